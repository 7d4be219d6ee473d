"""FFS bp2 training throughput on one GPU: pairs/s and peak memory, eager vs the fast paths.

What one step is (the same as ``depth_net train``'s, without Lightning and the data loader, which
are measured by the end-to-end run): forward in train mode with ``--iters`` refinement iterations on a
batch of ``--batch`` ImageNet-normalised random pairs of ``--height`` x ``--width``, the sequence loss
(:func:`runtime.training.loss.stereo_sequence_loss`), backward, gradient clipping (0.1), AdamW step.
"fp32" keeps PyTorch's defaults (cuDNN convolutions may use TF32, matmuls do not); "bf16" wraps the
forward and loss in ``torch.autocast(bfloat16)`` as Lightning's ``bf16-mixed`` does. Suffixes are the
``train`` spec switches: ``cl`` channels_last, ``compile`` (regions, :meth:`compile_regions`, as
``train.compile``), ``pad`` the widths padded to multiples of 8 (``train.pad_channels``), ``graph``
cuda_graph (:class:`runtime.training.graphed.GraphedStereoLoss`). A compiled variant spends its first
steps (the warm-up) compiling: about 2 minutes on a fresh machine, seconds from Inductor's cache.

Each variant: ``--warmup`` steps, then the median of ``--steps`` steps timed one by one with CUDA events
(``pairs_per_s``), then ``--steps`` steps back to back without a host sync (``pipelined_*``, what a
run sees); ``torch.cuda.max_memory_allocated`` since the variant started. ``--profile NAME`` adds a
torch.profiler pass over that variant (2 steps): kernel launches per step, GPU-busy fraction, the top
kernels and ops.

    python benchmarks/train_throughput.py --out benchmarks/results/train_throughput_h100.json \
        --warmup 3 --steps 10 --variants bf16_cl_compile_pad_graph          # the committed result
    python benchmarks/train_throughput.py --out /tmp/variants.json \
        --variants bf16,bf16_cl_graph,fp32,fp32_cl_graph --profile bf16_cl_graph

TAO reference (TAO's own FFS code on an H100, fp32; docs/performance.md): 3.8 pairs/s (530 ms/step,
batch 2), 32 GB.
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

FLAGS = ("cl", "compile", "pad", "graph")
#: the variants of the committed results; any ``{fp32|bf16}[_flag...]`` name with FLAGS works
VARIANTS = ("fp32", "bf16", "bf16_cl", "bf16_graph", "bf16_cl_graph", "fp32_cl_graph", "bf16_cl_compile",
            "bf16_cl_compile_graph", "bf16_cl_pad_graph", "bf16_cl_compile_pad", "bf16_cl_compile_pad_graph")


def parse_variant(name: str) -> tuple[torch.dtype | None, set[str]]:
    """``bf16_cl_compile_pad`` -> (autocast dtype, {"cl", "compile", "pad"})."""
    precision, *flags = name.split("_")
    if precision not in ("fp32", "bf16") or not set(flags) <= set(FLAGS):
        raise ValueError(f"variant {name!r}: expected fp32|bf16 followed by _flags from {FLAGS}")
    return (torch.bfloat16 if precision == "bf16" else None), set(flags)


def build_model(flags: set[str]) -> torch.nn.Module:
    """bp2 from seed 0; ``pad``: widths zero-padded to multiples of 8 (exact, see channel_padding)."""
    from skillbank.runtime.networks.factory import build_network
    from skillbank.runtime.networks.speed.channel_padding import pad_channels_
    from skillbank.specs import ModelConfig

    torch.manual_seed(0)
    model = build_network(ModelConfig(model_type="FastFoundationStereo")).cuda()
    if "pad" in flags:
        pad_channels_(model.eval(), training=True)
    model.train()
    if "cl" in flags:
        model.to_channels_last()
    if "compile" in flags:
        model.compile_regions()
    return model


def make_batch(batch: int, height: int, width: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator(device="cuda").manual_seed(0)
    left = torch.randn(batch, 3, height, width, device="cuda", generator=g)
    right = torch.roll(left, shifts=-24, dims=3) + 0.1 * torch.randn(batch, 3, height, width, device="cuda",
                                                                     generator=g)
    gt = torch.full((batch, 1, height, width), 24.0, device="cuda")
    valid = torch.ones_like(gt, dtype=torch.bool)
    return left, right, gt, valid


def step_fn(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data: tuple[torch.Tensor, ...], iters: int,
            dtype: torch.dtype | None, graph: bool = False, compiled: bool = False):
    """One training step as ``depth_net train`` runs it (the loss through :class:`GraphedStereoLoss`
    when ``graph``, as ``train.cuda_graph`` does; the sequence loss compiled when ``compiled``, as
    ``train.compile`` does)."""
    from skillbank.runtime.training.graphed import GraphedStereoLoss
    from skillbank.runtime.training.loss import stereo_loss_fn

    loss_fn = stereo_loss_fn(iters, 192, compiled=compiled)
    graphed = GraphedStereoLoss(model, loss_fn, autocast_dtype=dtype) if graph else None

    def step() -> torch.Tensor:
        ctx = torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with ctx:
            loss = graphed(*data) if graphed is not None else loss_fn(model, *data)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    return step


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from skillbank.runtime.training.schedule import build_optimizer
    from skillbank.specs import OptimConfig

    dtype, flags = parse_variant(name)
    graph = "graph" in flags
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    model = build_model(flags)
    optimizer = build_optimizer(model.parameters(), OptimConfig(lr=1e-5), fused=True)  # as depth_net on a GPU
    data = make_batch(args.batch, args.height, args.width)
    step = step_fn(model, optimizer, data, args.iters, dtype, graph, compiled="compile" in flags)
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
    # steady state without a host sync per step (as a run whose guard lags a step)
    torch.cuda.synchronize()
    t1 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    torch.cuda.synchronize()
    pipelined_ms = (time.perf_counter() - t1) * 1000 / args.steps
    median = statistics.median(times)
    result = {
        "variant": name,
        "autocast": str(dtype).replace("torch.", "") if dtype else "fp32",
        "channels_last": "cl" in flags,
        "compile_regions": "compile" in flags,
        "padded_widths": "pad" in flags,
        "cuda_graph": graph,
        "median_ms_per_step": round(median, 2),
        "p10_ms": round(sorted(times)[len(times) // 10], 2),
        "p90_ms": round(sorted(times)[(9 * len(times)) // 10], 2),
        "pairs_per_s": round(args.batch * 1000.0 / median, 2),
        "pipelined_ms_per_step": round(pipelined_ms, 2),
        "pipelined_pairs_per_s": round(args.batch * 1000.0 / pipelined_ms, 2),
        "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 1e9, 3),
        "steps_timed": len(times),
        "warmup_steps": args.warmup,
        "setup_and_warmup_s": round(setup_s, 1),
        "final_loss": float(loss.detach()),
    }
    print(json.dumps(result), flush=True)
    del model, optimizer, step
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


def profile(args: argparse.Namespace, name: str) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from skillbank.runtime.training.schedule import build_optimizer
    from skillbank.specs import OptimConfig

    dtype, flags = parse_variant(name)
    graph = "graph" in flags
    model = build_model(flags)
    optimizer = build_optimizer(model.parameters(), OptimConfig(lr=1e-5), fused=True)  # as depth_net on a GPU
    step = step_fn(model, optimizer, make_batch(args.batch, args.height, args.width), args.iters, dtype, graph,
                   compiled="compile" in flags)
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
        "variant": f"{name} (profiled, 2 steps)",
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
    parser.add_argument("--variants", default="bf16,bf16_cl_graph,fp32,fp32_cl_graph",
                        help=f"comma list, e.g. {', '.join(VARIANTS)}")
    parser.add_argument("--profile", default="", help="a variant to profile (2 steps), e.g. bf16_cl_compile")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
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
        "results": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.variants.split(","):
        try:
            report["results"].append(measure(name, args))
        except Exception as exc:  # a failed variant is reported, the others still run
            report["results"].append({"variant": name, "error": f"{type(exc).__name__}: {exc}"[:800]})
            print(f"{name} FAILED: {exc}", flush=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")   # survives a timeout
    ok = [r for r in report["results"] if "pairs_per_s" in r]
    if ok:
        best = max(ok, key=lambda r: r["pairs_per_s"])
        report["best"] = {"variant": best["variant"], "pairs_per_s": best["pairs_per_s"],
                          "pipelined_pairs_per_s": best["pipelined_pairs_per_s"]}
    if args.profile:
        report["profile"] = profile(args, args.profile)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
