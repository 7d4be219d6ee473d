"""FFS bp2 inference latency on a GPU: eager fp32 / TF32 / bf16 / fp16, channels_last, CUDA graphs.

480x736, batch 1, 8 refinement iterations (bp2 valid_iters), random weights, ImageNet-normalised
random input. Each variant: warm-up, then the median of >= 50 timed runs with CUDA events, peak memory
(torch.cuda.max_memory_allocated), and the output's difference from the fp32 eager output.
A torch.profiler pass over the eager bf16 variant lists kernel launches per pair and the top kernels.

    python benchmarks/ffs_inference.py --out benchmarks/results/ffs_inference_h100.json

Reference: TAO's own FFS code on an H100 (docs/performance.md, "TAO's own code"): eager fp32 78.6 ms, TF32
54.8 ms, bf16 autocast 66.5 ms, torch.compile + fp16 67.0 ms.
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
from cuda_timing import capture_graph, time_cuda


def build(channels_last: bool, weights: torch.dtype | None = None, fold_bn: bool = False,
          pad: str = "") -> torch.nn.Module:
    """bp2 FFS with random weights and randomised BatchNorm statistics (so folding is not a no-op);
    ``pad``: "pad" zero-pads the pruned widths to multiples of 8, "padh" the prediction heads too
    (:func:`channel_padding.pad_channels_`)."""
    from skillbank.runtime.networks.factory import build_network
    from skillbank.runtime.networks.speed.channel_padding import pad_channels_
    from skillbank.runtime.networks.speed.fold_batchnorm import fold_batchnorm_
    from skillbank.specs import ModelConfig

    torch.manual_seed(0)
    model = build_network(ModelConfig(model_type="FastFoundationStereo"))
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.8, 1.2)
    model = model.cuda().eval()
    if fold_bn:
        fold_batchnorm_(model)
    if pad:
        pad_channels_(model, heads=pad == "padh")
    if weights is not None:
        model.to(weights)
    if channels_last and hasattr(model, "to_channels_last"):
        model.to_channels_last()
    return model


def autocast_ctx(dtype: torch.dtype | None) -> Any:
    return torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()


def run_variant(name: str, left, right, iters: int, dtype, channels_last: bool, graph: bool,  # noqa: ANN001
                runs: int, warmup: int, compile_mode: str | None = None, weights: torch.dtype | None = None,
                fold_bn: bool = False, pad: str = "") -> tuple[dict[str, Any], torch.Tensor]:
    model = build(channels_last, weights, fold_bn, pad)
    if weights is not None:
        left, right = left.to(weights), right.to(weights)
    if compile_mode and compile_mode.startswith("regions-"):
        model.compile_regions(mode=compile_mode.removeprefix("regions-"))
    elif compile_mode:
        model = torch.compile(model, mode=compile_mode)
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    t0 = time.perf_counter()

    def eager():
        with torch.inference_mode(), autocast_ctx(dtype):
            return model(left, right, iters=iters, test_mode=True)

    fn = eager
    if graph:
        g, static_out = capture_graph(eager)

        def replay():
            g.replay()
            return static_out

        fn = replay
    fn()
    torch.cuda.synchronize()
    setup_s = time.perf_counter() - t0
    times = time_cuda(fn, runs, warmup)
    result = {
        "variant": name,
        "median_ms": statistics.median(times),
        "p10_ms": sorted(times)[len(times) // 10],
        "p90_ms": sorted(times)[9 * len(times) // 10],
        "runs": runs,
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 1e9,
        "setup_s": setup_s,
    }
    final = fn().float().clone()
    return result, final


def profile_variant(left, right, iters: int, dtype, channels_last: bool,  # noqa: ANN001
                    compiled_fp16: bool = False, pad: str = "") -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    if compiled_fp16:   # the best path's kernels: compiled regions, fp16 weights, folded BN (no graph)
        model = build(True, torch.float16, True, pad).compile_regions()
        left, right, dtype = left.half(), right.half(), None
    else:
        model = build(channels_last)
    with torch.inference_mode(), autocast_ctx(dtype):
        for _ in range(3):
            model(left, right, iters=iters, test_mode=True)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
            model(left, right, iters=iters, test_mode=True)
            torch.cuda.synchronize()
    events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    total_us = sum(e.device_time for e in events) if events and hasattr(events[0], "device_time") else None
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=45)
    return {"kernel_launches": len(events), "kernel_time_ms": total_us / 1e3 if total_us else None, "top": table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=736)
    parser.add_argument("--iters", type=int, default=8)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("ffs_inference.json"))
    parser.add_argument("--compile", default="", help="torch.compile variants to time, 'mode:weights[:pad|padh]' "
                        "comma list, e.g. default:bf16,max-autotune-no-cudagraphs:fp16:pad (slow to build); a mode "
                        "'regions-MODE' compiles the regions (model.compile_regions(mode=MODE)); 'pad' "
                        "zero-pads the pruned widths to multiples of 8, 'padh' the prediction heads too")
    parser.add_argument("--profile-compiled", action="store_true",
                        help="profile the compiled-regions fp16 path instead of eager bf16 channels_last")
    parser.add_argument("--profile-pad", default="", choices=["", "pad", "padh"],
                        help="with --profile-compiled: channel-padded ('pad') or with the heads ('padh')")
    parser.add_argument("--tf32-islands", action="store_true", help="TF32 for the fp32 parts of compiled variants")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--profile-out", type=Path, default=None)
    parser.add_argument("--variants", default="all", help="comma-separated variant names, 'all' or 'none'")
    args = parser.parse_args()

    torch.backends.cudnn.benchmark = True
    gen = torch.Generator(device="cuda").manual_seed(0)
    left = torch.randn(1, 3, args.height, args.width, device="cuda", generator=gen)
    right = torch.roll(left, shifts=-12, dims=3) + 0.05 * torch.randn(left.shape, device="cuda", generator=gen)

    bf16 = torch.bfloat16
    # name, autocast dtype, channels_last, CUDA graph, matmul math, weights dtype, fold BatchNorm
    variants = [
        ("eager_fp32", None, False, False, "fp32"),
        ("eager_tf32", None, False, False, "tf32"),
        ("eager_bf16_autocast", torch.bfloat16, False, False, "fp32"),
        ("eager_fp16_autocast", torch.float16, False, False, "fp32"),
        ("eager_bf16_channels_last", torch.bfloat16, True, False, "fp32"),
        ("cuda_graph_fp32", None, False, True, "fp32"),
        ("cuda_graph_tf32", None, False, True, "tf32"),
        ("cuda_graph_bf16", torch.bfloat16, False, True, "fp32"),
        ("cuda_graph_bf16_channels_last", torch.bfloat16, True, True, "fp32"),
        ("cuda_graph_fp16_channels_last", torch.float16, True, True, "fp32"),
        ("eager_bf16_weights_cl_foldbn", None, True, False, "fp32", bf16, True),
        ("cuda_graph_bf16_weights_cl", None, True, True, "fp32", bf16, False),
        ("cuda_graph_bf16_weights_cl_foldbn", None, True, True, "fp32", bf16, True),
        ("cuda_graph_fp32_cl_foldbn_tf32", None, True, True, "tf32", None, True),
        ("cuda_graph_fp16_weights_cl_foldbn", None, True, True, "fp32", torch.float16, True),
        ("cuda_graph_fp16_weights_cl_foldbn_pad8", None, True, True, "fp32", torch.float16, True, "pad"),
        ("cuda_graph_fp16_weights_cl_foldbn_pad8h", None, True, True, "fp32", torch.float16, True, "padh"),
    ]
    if args.variants != "all":
        keep = set(args.variants.split(","))
        variants = [variants[0]] + [v for v in variants[1:] if v[0] in keep]  # fp32 eager is the reference
    results = []
    reference = None
    for name, dtype, cl, graph, math, *rest in variants:
        weights, fold_bn, pad = list(rest) + [None, False, ""][len(rest):]
        torch.backends.cuda.matmul.allow_tf32 = math == "tf32"
        torch.backends.cudnn.allow_tf32 = math == "tf32"
        try:
            res, out = run_variant(name, left, right, args.iters, dtype, cl, graph, args.runs, args.warmup,
                                   weights=weights, fold_bn=fold_bn, pad=pad)
        except Exception as exc:  # a failed variant is reported, the rest still run
            results.append({"variant": name, "error": f"{type(exc).__name__}: {exc}"[:500]})
            print(f"{name:32s} FAILED {exc}")
            continue
        if reference is None:
            reference = out
        diff = (out - reference).abs()
        res["max_abs_diff_vs_fp32_px"] = float(diff.max())
        res["mean_abs_diff_vs_fp32_px"] = float(diff.mean())
        res["min_disparity"] = float(out.min())
        results.append(res)
        print(f"{name:32s} {res['median_ms']:8.2f} ms  peak {res['peak_mem_gb']:.2f} GB  "
              f"max|d| {res['max_abs_diff_vs_fp32_px']:.3g}px mean|d| {res['mean_abs_diff_vs_fp32_px']:.3g}px")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    for spec in (args.compile.split(",") if args.compile else []):
        mode, weights_name, *flags = spec.split(":")
        pad = flags[0] if flags else ""
        name = f"compile_{mode}_cuda_graph_{weights_name}_weights_cl_foldbn" + {"": "", "pad": "_pad8",
                                                                              "padh": "_pad8h"}[pad]
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = args.tf32_islands
        try:
            res, out = run_variant(name, left, right, args.iters, None, True, True, args.runs, args.warmup,
                                   compile_mode=mode, weights=dtypes[weights_name], fold_bn=True, pad=pad)
            res["max_abs_diff_vs_fp32_px"] = float((out - reference).abs().max())
            res["mean_abs_diff_vs_fp32_px"] = float((out - reference).abs().mean())
            res["tf32_for_fp32_islands"] = args.tf32_islands
            print(f"{name:32s} {res['median_ms']:8.2f} ms  setup {res['setup_s']:.0f}s "
                  f"max|d| {res['max_abs_diff_vs_fp32_px']:.3g}px", flush=True)
            results.append(res)
        except Exception as exc:
            results.append({"variant": name, "error": f"{type(exc).__name__}: {exc}"[:500]})
        args.out.write_text(json.dumps({"partial": True, "results": results}, indent=2))  # survives a timeout
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    prof = {} if args.no_profile else profile_variant(left, right, args.iters, torch.bfloat16, True,
                                                      compiled_fp16=args.profile_compiled, pad=args.profile_pad)
    if args.profile_out and prof:
        args.profile_out.write_text(prof["top"])
    report = {
        "benchmark": "FFS bp2 inference, batch 1, random weights",
        "input": [1, 3, args.height, args.width],
        "iters": args.iters,
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "tao_reference_h100_ms": {"eager_fp32": 78.6, "tf32": 54.8, "bf16_autocast": 66.5, "compile_fp16": 67.0},
        ("profile_compiled_regions_fp16" if args.profile_compiled else "profile_eager_bf16_channels_last"):
            {k: v for k, v in prof.items() if k != "top"},
        "results": results,
    }
    ok = [r for r in results if "median_ms" in r]
    if ok:
        best = min(ok, key=lambda r: r["median_ms"])
        report["best"] = {"variant": best["variant"], "median_ms": best["median_ms"]}
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k in ("device", "best") or k.startswith("profile")}))


if __name__ == "__main__":
    main()
