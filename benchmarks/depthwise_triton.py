"""The Triton depthwise convolution (runtime/networks/depthwise_kernels.py) against cuDNN.

For the disparity head's 7x7 (B=2, 40 channels, 80 x 184, bf16 channels_last) and any ``--shape``:
the forward (with bias) and the input gradient (cuDNN's ``convolution_backward`` for the input only;
the kernel with the rotated filter), per tile shape of ``--tiles``, in microseconds per call (median
of ``--runs`` CUDA-event timings of ``--repeat`` calls back to back), with the largest error against
an fp64 reference next to cuDNN's own.

    python benchmarks/depthwise_triton.py --out benchmarks/results/depthwise_triton_h100.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

TILES = ("8,32,8,4", "8,32,8,2", "4,32,8,2", "8,64,8,4", "4,64,8,4", "8,16,8,2", "8,32,16,4", "8,16,64,4",
         "4,16,64,4", "16,32,8,4")


def _time_us(fn, repeat: int, runs: int) -> float:
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeat):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000 / repeat)
    return round(statistics.median(times), 2)


def measure(shape: tuple[int, int, int, int], k: int, tiles: list[tuple[int, ...]], repeat: int,
            runs: int) -> dict[str, Any]:
    from skillbank.runtime.networks.depthwise_kernels import depthwise_conv_

    b, c, h, w = shape
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(b, c, h, w, device="cuda", generator=g).to(torch.bfloat16)
    x = x.contiguous(memory_format=torch.channels_last)
    dy = torch.randn_like(x)
    weight = (torch.randn(c, 1, k, k, device="cuda", generator=g) / k).to(torch.bfloat16)
    weight = weight.contiguous(memory_format=torch.channels_last)
    bias = torch.randn(c, device="cuda", generator=g).to(torch.bfloat16)
    ref = F.conv2d(x.double(), weight.double(), bias.double(), padding=k // 2, groups=c)
    ref_dx = F.conv2d(dy.double(), weight.double().flip(-2, -1), None, padding=k // 2, groups=c)

    def cudnn_fwd():
        return F.conv2d(x, weight, bias, padding=k // 2, groups=c)

    def cudnn_dgrad():
        return torch.ops.aten.convolution_backward(dy, x, weight, None, [1, 1], [k // 2] * 2, [1, 1], False,
                                                   [0, 0], c, [True, False, False])[0]

    out: dict[str, Any] = {"shape": list(shape), "kernel": k,
                           "max_abs_err_vs_fp64": {"cudnn_fwd": float((cudnn_fwd().double() - ref).abs().max()),
                                                   "cudnn_dgrad": float((cudnn_dgrad().double() - ref_dx).abs().max())},
                           "us": {"cudnn_fwd": _time_us(cudnn_fwd, repeat, runs),
                                  "cudnn_dgrad": _time_us(cudnn_dgrad, repeat, runs)}}
    y = torch.empty_like(x)
    for tile in tiles:
        name = "x".join(map(str, tile))
        try:
            depthwise_conv_(y, x, weight, bias, False, tile)
            err = float((y.double() - ref).abs().max())
            depthwise_conv_(y, dy, weight, None, True, tile)
            err_dx = float((y.double() - ref_dx).abs().max())
            out["max_abs_err_vs_fp64"][f"triton_{name}"] = max(err, err_dx)
            out["us"][f"triton_fwd_{name}"] = _time_us(lambda t=tile: depthwise_conv_(y, x, weight, bias, False, t),
                                                       repeat, runs)
            out["us"][f"triton_dgrad_{name}"] = _time_us(lambda t=tile: depthwise_conv_(y, dy, weight, None, True, t),
                                                         repeat, runs)
        except Exception as e:  # a tile that does not compile (registers) is reported, not fatal
            out["us"][f"triton_{name}"] = f"failed: {type(e).__name__}: {str(e)[:200]}"
        print(f"{list(shape)} k={k} tile {name}: fwd {out['us'].get(f'triton_fwd_{name}')} us "
              f"(cuDNN {out['us']['cudnn_fwd']}), dgrad {out['us'].get(f'triton_dgrad_{name}')} us "
              f"(cuDNN {out['us']['cudnn_dgrad']})", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shape", action="append", default=[], help="B,C,H,W,k (default: 2,40,80,184,7)")
    parser.add_argument("--tiles", default=";".join(TILES), help="ROWS,COLS,CB,warps;...")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    shapes = [tuple(int(v) for v in s.split(",")) for s in (args.shape or ["2,40,80,184,7"])]
    tiles = [tuple(int(v) for v in t.split(",")) for t in args.tiles.split(";")]
    results = [measure(s[:4], s[4], tiles, args.repeat, args.runs) for s in shapes]
    report = {"benchmark": __doc__.split("\n")[0], "device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for r in results:
        print(r["shape"], r["kernel"], json.dumps(r["us"]))


if __name__ == "__main__":
    main()
