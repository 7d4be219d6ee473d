"""FoundationStereo (ViT-L teacher) and DepthAnythingV2 latency and memory on a GPU, random weights.

Stereo: 480x736, batch 1, the spec's default FoundationStereo block (vitl, 3 GRU levels, max_disparity
416, valid_iters 22), test mode; fp32 (TF32 off), TF32, bf16 autocast. One bf16 training step
(320x736, batch 2, train_iters 22, AdamW on the trainable part) for peak memory. Mono: metric
DepthAnythingV2 vitl at 518x518 and 518x924, fp32 and bf16. Each timing: warm-up, then the median of
``--runs`` CUDA-event timings; peak memory from torch.cuda.max_memory_allocated.

    python benchmarks/foundation_stereo_gpu.py --out benchmarks/results/foundation_stereo_gpu_h100.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
from pathlib import Path
from typing import Any

import torch
from cuda_timing import time_cuda


def timed(fn, runs: int, warmup: int) -> float:  # noqa: ANN001
    return statistics.median(time_cuda(fn, runs, warmup))


def precision(name: str) -> Any:
    torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
    torch.backends.cudnn.allow_tf32 = name == "tf32"
    return torch.autocast("cuda", dtype=torch.bfloat16) if name == "bf16" else contextlib.nullcontext()


def stereo(runs: int, warmup: int) -> list[dict[str, Any]]:
    from skillbank.runtime.networks.factory import build_network
    from skillbank.specs import ModelConfig

    torch.manual_seed(0)
    cfg = ModelConfig(model_type="FoundationStereo")
    net = build_network(cfg).cuda().eval()
    left = torch.randn(1, 3, 480, 736, device="cuda")
    right = torch.roll(left, -8, dims=-1)
    rows, ref = [], None
    for name in ("fp32", "tf32", "bf16"):
        torch.cuda.reset_peak_memory_stats()
        with torch.no_grad(), precision(name):
            ms = timed(lambda: net(left, right, test_mode=True), runs, warmup)
            out = net(left, right, test_mode=True).float()
        ref = out if ref is None else ref
        rows.append({"network": "FoundationStereo vitl", "size": "480x736", "iters": cfg.valid_iters,
                     "precision": name, "median_ms": round(ms, 2),
                     "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                     "mean_abs_diff_vs_fp32_px": round((out - ref).abs().mean().item(), 4)})
        print(rows[-1], flush=True)

    net.train()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    left = torch.randn(2, 3, 320, 736, device="cuda")
    right = torch.roll(left, -8, dims=-1)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with precision("bf16"):
            init_disp, preds = net(left, right)
            loss = init_disp.float().abs().mean() + sum(p.float().abs().mean() for p in preds)
        loss.backward()
        opt.step()

    torch.cuda.reset_peak_memory_stats()
    ms = timed(step, max(3, runs // 5), 2)
    rows.append({"network": "FoundationStereo vitl", "size": "2x320x736 train step", "iters": cfg.train_iters,
                 "precision": "bf16", "median_ms": round(ms, 2),
                 "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)})
    print(rows[-1], flush=True)
    return rows


def mono(runs: int, warmup: int) -> list[dict[str, Any]]:
    from skillbank.runtime.networks.factory import build_network
    from skillbank.specs import ModelConfig

    torch.manual_seed(0)
    net = build_network(ModelConfig(model_type="MetricDepthAnything", encoder="vitl"), max_depth=20.0)
    net = net.cuda().eval()
    rows = []
    for h, w in ((518, 518), (518, 924)):
        x = torch.randn(1, 3, h, w, device="cuda")
        for name in ("fp32", "bf16"):
            torch.cuda.reset_peak_memory_stats()
            with torch.no_grad(), precision(name):
                ms = timed(lambda: net(x), runs, warmup)  # noqa: B023
            rows.append({"network": "MetricDepthAnything vitl", "size": f"{h}x{w}", "precision": name,
                         "median_ms": round(ms, 2),
                         "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)})
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = stereo(args.runs, args.warmup) + mono(args.runs, args.warmup)
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "python": platform.python_version(), "results": rows}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
