"""Bias gradients of the deferred weight gradients: ways of summing an output gradient over its pixels.

The deferred weight gradients (runtime/networks/deferred_weight_grads.py) of FFS bp2 (320x736,
batch 2, 22 iterations) reduce, per tapped layer with a bias and per batch of 11 iterations, a bf16
channels_last output gradient of 2*11 x C x 80 x 184 (323,840 pixels) to C sums. The phase profile
(benchmarks/results/train_phases_h200_940d8da.json) put these reductions, run by
``convolution_backward``'s bias mask, at 3.5 ms a step (97 calls at ~0.6 TB/s). This times, per
channel count of the tapped layers, as CUDA graphs (GPU time, no launch overhead):

* ``conv_backward``: ``convolution_backward``'s bias gradient alone (what runs now);
* ``sum``: ``dy.sum((0, 2, 3), dtype=float32)``;
* ``sum_wide``: the (pixels, C) matrix viewed as (pixels / k, k * C) rows, summed over the rows in
  fp32 and then over the k groups (longer rows for the reduction kernel);
* ``gemv``: ``ones(1, pixels) @ dy`` (cuBLAS, fp32 accumulation).

    python benchmarks/bias_grad.py --out benchmarks/results/bias_grad_h200.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from cuda_timing import capture_graph, time_cuda

CHANNELS = (8, 16, 40, 48, 56, 64, 96, 104, 168, 216, 248)


def variants(dy: torch.Tensor) -> dict[str, object]:
    c = dy.shape[1]
    flat = dy.permute(0, 2, 3, 1).reshape(-1, c)           # a view: channels_last is (pixels, C)
    ones = torch.ones(1, flat.shape[0], dtype=dy.dtype, device=dy.device)
    weight = torch.empty(c, c, 1, 1, dtype=dy.dtype, device=dy.device).to(memory_format=torch.channels_last)
    k = next(k for k in (16, 8, 4, 2, 1) if flat.shape[0] % k == 0 and k * c <= 2048)

    def conv_backward() -> torch.Tensor:
        return torch.ops.aten.convolution_backward(dy, dy, weight, [c], [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
                                                   [False, False, True])[2]

    return {
        "conv_backward": conv_backward,
        "sum": lambda: dy.sum((0, 2, 3), dtype=torch.float32),
        "sum_wide": lambda: flat.reshape(-1, k * c).sum(0, dtype=torch.float32).view(k, c).sum(0),
        "gemv": lambda: (ones @ flat).view(c),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    for c in CHANNELS:
        dy = torch.randn(22, c, 80, 184, device="cuda", dtype=torch.bfloat16).to(memory_format=torch.channels_last)
        exact = dy.double().sum((0, 2, 3))
        row: dict[str, object] = {"channels": c, "mbytes": dy.numel() * 2 / 1e6}
        for name, fn in variants(dy).items():
            graph, out = capture_graph(fn)
            times = time_cuda(graph.replay, args.runs, warmup=5)
            ms = statistics.median(times)
            row[name] = {"ms": round(ms, 4), "tb_per_s": round(dy.numel() * 2 / ms / 1e9, 3),
                         "max_rel_err": float(((out.double() - exact).abs().max() / exact.abs().max()).item())}
        rows.append(row)
        print(json.dumps(row))
    totals = {name: round(sum(r[name]["ms"] for r in rows), 4) for name in ("conv_backward", "sum", "sum_wide", "gemv")}
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "pixels": 22 * 80 * 184,
              "rows": rows, "total_ms_over_channels": totals}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
