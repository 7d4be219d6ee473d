"""The encoder's full-resolution 32-channel 3x3x3 convolutions: cuDNN's 3D kernels against 2D formulations.

FFS bp2's cost-volume filtering runs six 3x3x3 convolutions with 32 (or 8) output channels on the
full 1/4-resolution volume (2 x 32 x 48 x 80 x 184 for 320x736 crops, batch 2). On an H100 the
phase profile (``results/train_phases_h100_5e8ad24.json``) shows Ampere (sm80) cuDNN kernels with
256x32 tiles for them: forward 2.2 ms, input gradient 2.2 ms and weight gradient ~3 ms a step.
This times, forward + backward (input and weight gradients), bf16, channels_last_3d, as CUDA graphs:

* ``conv3d``: ``F.conv3d`` (what runs now);
* ``depth_taps_2d``: the volume's (batch x depth) slices as a batch of 2D images (a view of the
  channels_last_3d tensor), one 3x3 ``conv2d`` per depth tap of the filter, the three outputs added
  with the depth shifts (same multiply-adds, 2D kernels);
* ``stacked_depth_2d``: the three depth neighbours concatenated along the channels (a copy of three
  times the input), one 3x3 ``conv2d`` with 96 input channels;
* ``conv3d_out64``: ``F.conv3d`` with the output channels zero-padded to 64 (twice the multiply-adds:
  does cuDNN then pick Hopper kernels?).

Measured (``results/conv3d_formulations_h100.json``, H100, one 32 -> 32 convolution): cuDNN's
``conv3d`` is the fastest by far, 0.38 ms forward and 1.23 ms forward + backward (six of them: the
~7.4 ms the profile shows); the 2D formulations take 4.4 and 5.5 ms, the 64-channel one 3.0 ms. The
networks keep ``conv3d``.

``--check`` compares every formulation's output and gradients with ``conv3d`` in float64 on the CPU
(small shape) and exits; the GPU run also reports each one's largest difference from ``conv3d``.

    python benchmarks/conv3d_formulations.py --check
    python benchmarks/conv3d_formulations.py --out benchmarks/results/conv3d_formulations_h100.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

Conv = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def conv3d(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.conv3d(x, w, padding=1)


def _slices_2d(x: torch.Tensor) -> torch.Tensor:
    """(B, C, D, H, W) -> (B*D, C, H, W); a view for a channels_last_3d tensor (NHWC strides)."""
    b, c, d, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(b * d, c, h, w)


def _volume(y: torch.Tensor, b: int, d: int) -> torch.Tensor:
    """(B*D, C, H, W) -> (B, C, D, H, W), the inverse of :func:`_slices_2d`."""
    _, c, h, w = y.shape
    return y.reshape(b, d, c, h, w).permute(0, 2, 1, 3, 4)


def depth_taps_2d(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """sum over the depth taps k of conv2d(x[d + k - 1], w[:, :, k]), zero outside the volume."""
    b, _, d, _, _ = x.shape
    xs = _slices_2d(x)
    taps = [_volume(F.conv2d(xs, w[:, :, k], padding=1), b, d) for k in range(3)]
    mid = taps[1]
    below = F.pad(taps[0][:, :, :-1], (0, 0, 0, 0, 1, 0))      # y[d] += tap0(x[d - 1])
    above = F.pad(taps[2][:, :, 1:], (0, 0, 0, 0, 0, 1))       # y[d] += tap2(x[d + 1])
    return mid + below + above


def stacked_depth_2d(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    b, c, d, _, _ = x.shape
    padded = F.pad(x, (0, 0, 0, 0, 1, 1))
    stacked = torch.cat([padded[:, :, k:k + d] for k in range(3)], dim=1)   # (B, 3C, D, H, W)
    stacked = stacked.contiguous(memory_format=torch.channels_last_3d)
    w2 = w.permute(0, 2, 1, 3, 4).reshape(w.shape[0], 3 * c, 3, 3)        # channel index k * C + c
    return _volume(F.conv2d(_slices_2d(stacked), w2, padding=1), b, d)


def conv3d_out64(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    pad = 64 - w.shape[0]
    return F.conv3d(x, F.pad(w, (0, 0, 0, 0, 0, 0, 0, 0, 0, pad)), padding=1)[:, :w.shape[0]]


FORMULATIONS: dict[str, Conv] = {"conv3d": conv3d, "depth_taps_2d": depth_taps_2d,
                                 "stacked_depth_2d": stacked_depth_2d, "conv3d_out64": conv3d_out64}


def _run(fn: Conv, x: torch.Tensor, w: torch.Tensor, dy: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.detach().requires_grad_()
    w = w.detach().requires_grad_()
    y = fn(x, w)
    gx, gw = torch.autograd.grad(y, (x, w), dy)
    return y, gx, gw


def check() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 5, 6, 7, generator=g, dtype=torch.float64).contiguous(memory_format=torch.channels_last_3d)
    w = torch.randn(4, 8, 3, 3, 3, generator=g, dtype=torch.float64)
    dy = torch.randn(2, 4, 5, 6, 7, generator=g, dtype=torch.float64)
    ref = _run(conv3d, x, w, dy)
    for name, fn in FORMULATIONS.items():
        for r, got in zip(ref, _run(fn, x, w, dy), strict=True):
            torch.testing.assert_close(got, r, rtol=1e-10, atol=1e-10)
        print(f"{name}: output, input gradient and weight gradient equal conv3d's (float64)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--check", action="store_true", help="CPU float64 equivalence only")
    parser.add_argument("--shape", default="2,32,48,80,184", help="B,C,D,H,W of the input")
    parser.add_argument("--out-channels", type=int, default=32)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if args.check:
        check()
        return
    from cuda_timing import capture_graph, gpu_report, time_cuda, write_report

    torch.backends.cudnn.benchmark = True
    shape = tuple(int(v) for v in args.shape.split(","))
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(shape, device="cuda", generator=g, dtype=torch.bfloat16)
    x = x.contiguous(memory_format=torch.channels_last_3d)
    w = (0.05 * torch.randn(args.out_channels, shape[1], 3, 3, 3, device="cuda", generator=g)).to(torch.bfloat16)
    w = w.contiguous(memory_format=torch.channels_last_3d)
    dy = torch.randn(shape[0], args.out_channels, *shape[2:], device="cuda", generator=g, dtype=torch.bfloat16)
    dy = dy.contiguous(memory_format=torch.channels_last_3d)
    ref = [t.float() for t in _run(conv3d, x, w, dy)]
    results = {}
    for name, fn in FORMULATIONS.items():
        try:
            fwd_graph, _ = capture_graph(lambda fn=fn: fn(x, w))
            both_graph, out = capture_graph(lambda fn=fn: _run(fn, x, w, dy))
            fwd = statistics.median(time_cuda(fwd_graph.replay, args.runs, warmup=3))
            both = statistics.median(time_cuda(both_graph.replay, args.runs, warmup=3))
            err = [float((o.float() - r).abs().max() / r.abs().max()) for o, r in zip(out, ref, strict=True)]
            results[name] = {"ms_forward": round(fwd, 4), "ms_forward_backward": round(both, 4),
                             "max_rel_diff_vs_conv3d": {"out": err[0], "grad_x": err[1], "grad_w": err[2]}}
        except Exception as exc:  # noqa: BLE001 - a formulation cuDNN cannot run is a result too
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        print(name, json.dumps(results[name]), flush=True)
    report = gpu_report("3x3x3 convolution, bf16 channels_last_3d, forward and forward + backward "
                        "(CUDA graphs, median of --runs replays)", results,
                        input=list(shape), out_channels=args.out_channels)
    write_report(args.out, report)


if __name__ == "__main__":
    main()
