"""The disparity head's depthwise 7x7 convolution, forward + backward, in the ways cuDNN can run it.

FFS's disparity head runs two depthwise 7x7 convolutions per refinement iteration (44 per training
step at 22 iterations) on (2, 40, 80, 184) bf16 maps (320x736 crops, widths padded). cuDNN's
depthwise kernels for channels_last bf16 (``conv2d_c1_k1_nhwc`` and its gradients) took 4.6 ms of
a step on an H200 (``results/train_phases_h200.json``). This times one forward + backward (input,
weight and bias gradients) per layout and formulation:

* ``depthwise_nhwc`` / ``depthwise_nchw``: ``groups=C`` convolution, channels_last or contiguous;
* ``dense_nhwc`` / ``dense_nchw``: the same convolution as a dense one whose weight is the
  depthwise weight on the channel diagonal (``w * eye``): 40x the multiply-adds, on tensor cores.

A hand-written Triton depthwise kernel (one program per row strip x channel block, taps
accumulated in fp32, weight gradient from per-program partial sums) was tried and removed: 0.72 ms
against cuDNN's 0.16 here, and slower at the EdgeNeXt backbone's shapes too
(results/experiments_depthwise_triton_h200.json).

    python benchmarks/depthwise_conv.py --out benchmarks/results/depthwise_conv_h200.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def block_diagonal(weight: torch.Tensor) -> torch.Tensor:
    """(C, 1, k, k) depthwise weight -> (C, C, k, k) dense weight with it on the channel diagonal."""
    c = weight.shape[0]
    return weight * torch.eye(c, device=weight.device, dtype=weight.dtype)[:, :, None, None]


def run(kind: str, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, grad: torch.Tensor):
    if kind.endswith("nhwc"):
        x = x.contiguous(memory_format=torch.channels_last)
        grad = grad.contiguous(memory_format=torch.channels_last)
    x = x.detach().requires_grad_()
    w = w.detach().requires_grad_()
    b = b.detach().requires_grad_()
    if kind.startswith("dense"):
        weight = block_diagonal(w)
        if kind.endswith("nhwc"):
            weight = weight.contiguous(memory_format=torch.channels_last)
        y = F.conv2d(x, weight, b, padding=w.shape[-1] // 2)
    else:
        y = F.conv2d(x, w, b, padding=w.shape[-1] // 2, groups=x.shape[1])
    y.backward(grad)
    return y, x.grad, w.grad, b.grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shape", default="2,40,80,184")
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--kernel", type=int, default=7)
    parser.add_argument("--kinds", default="depthwise_nhwc,depthwise_nchw,dense_nhwc,dense_nchw")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    shape = tuple(int(v) for v in args.shape.split(","))
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(shape, device="cuda", generator=g, dtype=torch.bfloat16)
    w = torch.randn(shape[1], 1, args.kernel, args.kernel, device="cuda", generator=g, dtype=torch.bfloat16) * 0.1
    b = torch.randn(shape[1], device="cuda", generator=g, dtype=torch.bfloat16)
    grad = torch.randn(shape, device="cuda", generator=g, dtype=torch.bfloat16)
    ref = [t.float() for t in run("depthwise_nchw", x.float(), w.float(), b.float(), grad.float())]
    results = {}
    for kind in args.kinds.split(","):
        for _ in range(5):
            out = run(kind, x, w, b, grad)
        times = []
        for _ in range(5):         # back to back: the GPU's time, not the host's launches
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(args.repeat):
                run(kind, x, w, b, grad)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / args.repeat)
        err = [((o.float() - r).norm() / r.norm()).item() for o, r in zip(out, ref, strict=True)]
        results[kind] = {"ms_fwd_bwd": round(statistics.median(times), 4),
                         "rel_err_vs_fp32": {"out": err[0], "grad_x": err[1], "grad_w": err[2], "grad_b": err[3]}}
        print(kind, results[kind], flush=True)
    report = {"benchmark": __doc__.split("\n")[0], "shape": shape, "dtype": "bfloat16", "kernel": args.kernel,
              "device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "note": "eager, calls back to back (median of 5 runs of --repeat calls): GPU time per forward + backward",
              "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
