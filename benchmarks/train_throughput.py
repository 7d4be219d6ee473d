"""FFS bp2 training throughput on one GPU: pairs/s and peak memory, fp32 vs bf16 autocast.

What one step is (the same as ``depth_net train``'s, without Lightning and the data loader, which
are measured by the end-to-end run): forward in train mode with ``--iters`` refinement iterations on a
batch of ``--batch`` ImageNet-normalised random pairs of ``--height`` x ``--width``, the sequence loss
(:func:`runtime.training.loss.stereo_sequence_loss`), backward, gradient clipping (0.1), AdamW step.
"fp32" keeps PyTorch's defaults (cuDNN convolutions may use TF32, matmuls do not); "bf16" wraps the
forward and loss in ``torch.autocast(bfloat16)`` as Lightning's ``bf16-mixed`` does.

Each variant: ``--warmup`` steps, then the median of ``--steps`` steps timed with CUDA events;
``torch.cuda.max_memory_allocated`` since the variant started. ``--profile`` adds a torch.profiler
pass (bf16, 2 steps): kernel launches per step, GPU-busy fraction, the top kernels and the CPU/GPU time
of each top-level FFS module (forward ranges; backward kernels are listed under the op names).

    python benchmarks/train_throughput.py --out benchmarks/results/train_throughput_h100.json --profile

TAO reference (DEPTH_NET_FACTS / issue 7): 3.8 pairs/s (530 ms/step, batch 2), 32 GB, fp32.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch


def build_model() -> torch.nn.Module:
    from skillbank.runtime.networks.factory import build_network
    from skillbank.specs import ModelConfig

    torch.manual_seed(0)
    return build_network(ModelConfig(model_type="FastFoundationStereo")).cuda().train()


def make_batch(batch: int, height: int, width: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator(device="cuda").manual_seed(0)
    left = torch.randn(batch, 3, height, width, device="cuda", generator=g)
    right = torch.roll(left, shifts=-24, dims=3) + 0.1 * torch.randn(batch, 3, height, width, device="cuda",
                                                                     generator=g)
    gt = torch.full((batch, 1, height, width), 24.0, device="cuda")
    valid = torch.ones_like(gt, dtype=torch.bool)
    return left, right, gt, valid


def step_fn(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data: tuple[torch.Tensor, ...], iters: int,
            dtype: torch.dtype | None):
    from skillbank.runtime.training.loss import stereo_sequence_loss

    left, right, gt, valid = data

    def step() -> float:
        ctx = torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with ctx:
            init_disp, preds = model(left, right, iters=iters)
            loss, _ = stereo_sequence_loss(init_disp, preds, gt, valid, max_disparity=192)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    return step


def measure(name: str, dtype: torch.dtype | None, args: argparse.Namespace) -> dict[str, Any]:
    from skillbank.runtime.training.schedule import build_optimizer
    from skillbank.specs import OptimConfig

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    model = build_model()
    optimizer = build_optimizer(model.parameters(), OptimConfig(lr=1e-5))
    data = make_batch(args.batch, args.height, args.width)
    step = step_fn(model, optimizer, data, args.iters, dtype)
    for _ in range(args.warmup):
        loss = step()
    torch.cuda.synchronize()
    setup_s = time.perf_counter() - t0
    times = []
    for _ in range(args.steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        loss = step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    median = statistics.median(times)
    result = {
        "variant": name,
        "median_ms_per_step": round(median, 2),
        "p10_ms": round(sorted(times)[len(times) // 10], 2),
        "p90_ms": round(sorted(times)[(9 * len(times)) // 10], 2),
        "pairs_per_s": round(args.batch * 1000.0 / median, 2),
        "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 1e9, 3),
        "steps_timed": len(times),
        "warmup_steps": args.warmup,
        "setup_and_warmup_s": round(setup_s, 1),
        "final_loss": float(loss.detach()),
    }
    print(json.dumps(result), flush=True)
    del model, optimizer
    return result


class _ModuleRanges:
    """record_function ranges around the forward of the top-level children of the network."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.handles = []
        self.stack: list[Any] = []
        for name, child in model.named_children():
            self.handles.append(child.register_forward_pre_hook(self._enter(f"ffs.{name}")))
            self.handles.append(child.register_forward_hook(self._exit))

    def _enter(self, label: str):
        def hook(module, inputs):  # noqa: ANN001
            rf = torch.autograd.profiler.record_function(label)
            rf.__enter__()
            self.stack.append(rf)

        return hook

    def _exit(self, module, inputs, output) -> None:  # noqa: ANN001
        self.stack.pop().__exit__(None, None, None)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def profile(args: argparse.Namespace) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from skillbank.runtime.training.schedule import build_optimizer
    from skillbank.specs import OptimConfig

    model = build_model()
    optimizer = build_optimizer(model.parameters(), OptimConfig(lr=1e-5))
    step = step_fn(model, optimizer, make_batch(args.batch, args.height, args.width), args.iters, torch.bfloat16)
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    ranges = _ModuleRanges(model)
    n = 2
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        torch.cuda.synchronize()
        wall_ms = (time.perf_counter() - t0) * 1000 / n
    ranges.remove()
    events = prof.key_averages()
    # device-side rows, minus the record_function ranges (GPU annotations named ffs.*)
    kernels = [e for e in events if e.device_type is not None and str(e.device_type).endswith("CUDA")
               and not e.key.startswith("ffs.")]
    kernel_ms = sum(e.self_device_time_total for e in kernels) / 1000 / n
    launches = sum(e.count for e in kernels) / n
    top = sorted(kernels, key=lambda e: e.self_device_time_total, reverse=True)[:15]
    modules = sorted((e for e in events if e.key.startswith("ffs.")), key=lambda e: e.device_time_total, reverse=True)
    ops = sorted((e for e in events if e.key.startswith("aten::")), key=lambda e: e.device_time_total, reverse=True)
    return {
        "variant": "bf16 (profiled, 2 steps)",
        "wall_ms_per_step": round(wall_ms, 1),
        "gpu_kernel_ms_per_step": round(kernel_ms, 1),
        "gpu_busy_fraction": round(kernel_ms / wall_ms, 3),
        "kernel_launches_per_step": int(launches),
        "top_kernels": [{"name": e.key[:120], "ms_per_step": round(e.self_device_time_total / 1000 / n, 2),
                         "calls_per_step": e.count // n} for e in top],
        "top_aten_ops_by_gpu_time": [{"name": e.key, "gpu_ms_per_step": round(e.device_time_total / 1000 / n, 2),
                                      "cpu_ms_per_step": round(e.cpu_time_total / 1000 / n, 2),
                                      "calls_per_step": e.count // n} for e in ops[:15]],
        "forward_by_module": [{"module": e.key, "cpu_ms_per_step": round(e.cpu_time_total / 1000 / n, 2),
                               "gpu_ms_per_step": round(e.device_time_total / 1000 / n, 2),
                               "calls_per_step": e.count // n} for e in modules],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--width", type=int, default=736)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--iters", type=int, default=22)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--variants", default="fp32,bf16")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    results = [measure(v, dtypes[v], args) for v in args.variants.split(",")]
    report: dict[str, Any] = {
        "benchmark": "FFS bp2 training step (forward + sequence loss + backward + clip + AdamW), random weights",
        "input": [args.batch, 3, args.height, args.width],
        "train_iters": args.iters,
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "tao_reference": {"pairs_per_s": 3.8, "ms_per_step": 530, "memory_gb": 32, "precision": "fp32"},
        "target_pairs_per_s": 30,
        "results": results,
    }
    if args.profile:
        report["profile"] = profile(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
