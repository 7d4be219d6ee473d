"""Where a compiled FFS training step spends its GPU time: encoder / iterations, forward / backward.

Profiles a ``compile`` variant of :mod:`train_throughput` (no CUDA graph, so every kernel launch has
a CPU call site) and charges each kernel to the compiled region that launched it: ``CompiledFunction``
ranges in launch order are the encoder, the ``iters`` refinement iterations, the batched upsampling
and the sequence loss (compiled, as ``train.compile`` runs it); ``CompiledFunctionBackward`` ranges
come in reverse; the training lookups' ``_Lookup`` / ``_LookupBackward`` ranges (between them) are
their own phases, and so are the deferred weight gradients launched from ``_TapsBackward`` /
``GradientSinkBackward`` (on a side stream: their time overlaps). Kernels launched elsewhere are the
eager rest: autograd's own kernels between the regions, gradient clipping and AdamW. Per phase: GPU
milliseconds per step and the top kernels.

``--sites PATTERN`` (repeatable) also records shapes and, for every kernel whose name contains a
pattern, reports where it came from: its phase, the chain of CPU ops around its launch (outermost
last, e.g. ``aten::copy_ < aten::contiguous < aten::convolution_backward``) and the innermost op's input
shapes, strides and dtypes, grouped, with GPU milliseconds per step: which tensors a strided copy moves.

    python benchmarks/train_phases.py --out benchmarks/results/train_phases_h100.json \
        --variant bf16_cl_compile_pad --top 40 --sites Cat --sites copy
"""

from __future__ import annotations

import argparse
import bisect
import json
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import torch
from train_throughput import build_model, make_batch, parse_variant, step_fn

FORWARD, BACKWARD = "CompiledFunction", "CompiledFunctionBackward"


def _phase_of(index: int, per_step: int, iters: int, backward: bool) -> str:
    """The i-th compiled range of a pass (0-based within the profiled steps) -> phase name.
    Forward order: encoder, the iterations, the batched upsampling, the sequence loss (compiled
    since ``train.compile`` compiles it: ``per_step`` = iters + 3); the backward reverses it."""
    i = index % per_step
    if backward:
        i = per_step - 1 - i
    phase = "encoder" if i == 0 else "iteration" if i <= iters else "upsampling" if i == iters + 1 else "loss"
    return f"{phase}_{'backward' if backward else 'forward'}"


def phases_from_trace(trace: dict[str, Any], iters: int, steps: int, top_n: int = 8,
                      sites: tuple[str, ...] = ()) -> dict[str, Any]:
    events = trace["traceEvents"]
    kernels = {e["args"]["correlation"]: e for e in events
               if e.get("cat") == "kernel" and "correlation" in e.get("args", {})}
    launches = [e for e in events if e.get("cat") in ("cuda_runtime", "cuda_driver")
                and e.get("args", {}).get("correlation") in kernels]
    ranges: dict[Any, list[tuple[float, float, str]]] = defaultdict(list)
    for name, backward in ((FORWARD, False), (BACKWARD, True)):
        found = sorted((e for e in events if e.get("cat") == "cpu_op" and e.get("name") == name),
                       key=lambda e: e["ts"])
        if len(found) not in (steps * (iters + 2), steps * (iters + 3)):
            seen = Counter(e.get("name") for e in events if "Compiled" in str(e.get("name")))
            raise RuntimeError(f"expected {steps * (iters + 2)} or {steps * (iters + 3)} {name} ranges (with a "
                               f"compiled loss), found {len(found)}; seen {dict(seen)}")
        per_step = len(found) // steps
        for i, e in enumerate(found):
            ranges[e["tid"]].append((e["ts"], e["ts"] + e["dur"], _phase_of(i, per_step, iters, backward)))
    # a training forward's lookups run between the compiled ranges (runtime/networks/speed/training_lookup.py)
    # and the update's deferred weight gradients (runtime/networks/speed/deferred_weight_grads.py: on a side
    # stream, so their kernels' durations overlap the backward's)
    for name, phase in (("_Lookup", "lookup_forward"), ("_LookupBackward", "lookup_backward"),
                        ("_TapsBackward", "update_weight_grads"), ("GradientSinkBackward", "update_weight_grads")):
        for e in events:
            if e.get("cat") == "cpu_op" and e.get("name") == name:
                ranges[e["tid"]].append((e["ts"], e["ts"] + e["dur"], phase))
    starts = {tid: sorted(r) for tid, r in ranges.items()}
    ms: Counter[str] = Counter()
    count: Counter[str] = Counter()
    top: dict[str, Counter[str]] = defaultdict(Counter)
    calls: dict[str, Counter[str]] = defaultdict(Counter)
    site_ms: Counter[tuple[str, ...]] = Counter()
    site_calls: Counter[tuple[str, ...]] = Counter()
    ops = _cpu_ops_by_thread(events) if sites else {}
    for launch in launches:
        phase = "eager_rest"
        spans = starts.get(launch["tid"], [])
        k = bisect.bisect_right(spans, (launch["ts"], float("inf"), "")) - 1
        if k >= 0 and spans[k][0] <= launch["ts"] <= spans[k][1]:
            phase = spans[k][2]
        kernel = kernels[launch["args"]["correlation"]]
        ms[phase] += kernel["dur"] / 1000 / steps
        count[phase] += 1
        top[phase][kernel["name"][:100]] += kernel["dur"] / 1000 / steps
        calls[phase][kernel["name"][:100]] += 1
        if any(p in kernel["name"] for p in sites):
            key = (phase, kernel["name"][:100], *_site(ops.get(launch["tid"], ([], [])), launch["ts"]))
            site_ms[key] += kernel["dur"] / 1000 / steps
            site_calls[key] += 1
    total = sum(ms.values())
    return {
        "gpu_ms_per_step": round(total, 2),
        "phases": {p: {"ms_per_step": round(v, 2), "share": round(v / total, 3),
                       "kernels_per_step": count[p] // steps,
                       **({"ms_per_iteration": round(v / iters, 3)} if p.startswith("iteration") else {}),
                       "top_kernels": [{"name": n, "ms_per_step": round(t, 2), "calls_per_step": calls[p][n] // steps}
                                       for n, t in top[p].most_common(top_n)]}
                   for p, v in ms.most_common()},
        **({"sites": [{"phase": k[0], "kernel": k[1], "ops": k[2], "inputs": k[3], "ms_per_step": round(v, 3),
                       "calls_per_step": site_calls[k] / steps} for k, v in site_ms.most_common()]}
           if sites else {}),
    }


def _cpu_ops_by_thread(events: list[dict[str, Any]]) -> dict[Any, tuple[list[float], list[dict[str, Any]]]]:
    by_tid: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e.get("cat") == "cpu_op":
            by_tid[e["tid"]].append(e)
    return {tid: ([e["ts"] for e in found], found)
            for tid, found in ((tid, sorted(v, key=lambda e: e["ts"])) for tid, v in by_tid.items())}


#: ops that only move data: a site reports the first enclosing op that is none of these, too
_LAYOUT_OPS = ("aten::copy_", "aten::clone", "aten::contiguous", "aten::to", "aten::_to_copy", "aten::cat")


def _site(ops: tuple[list[float], list[dict[str, Any]]], ts: float, depth: int = 5,
          look_back: int = 4000) -> tuple[str, str]:
    """The CPU ops enclosing a launch at ``ts`` (innermost first, ``depth`` of them) and the inputs
    (dims, strides, dtypes) of the innermost one and of the first that is not a data move (the op
    that asked for a copy: its other inputs tell which tensor it is), from the ops started at most
    ``look_back`` ops before it."""
    starts, found = ops
    i = bisect.bisect_right(starts, ts) - 1
    enclosing = []
    for e in found[max(0, i - look_back):i + 1][::-1]:
        if e["ts"] <= ts <= e["ts"] + e.get("dur", 0):
            enclosing.append(e)
            if len(enclosing) == depth:
                break
    if not enclosing:
        return "", ""
    inputs = _inputs(enclosing[0])
    caller = next((e for e in enclosing if e["name"].startswith("aten::") and e["name"] not in _LAYOUT_OPS), None)
    if caller is not None and caller is not enclosing[0]:
        inputs += f" | {caller['name']}: {_inputs(caller)}"
    return " < ".join(e["name"] for e in enclosing), inputs


def _inputs(op: dict[str, Any]) -> str:
    args = op.get("args", {})
    return "; ".join(f"{d} {s} {t}" for d, s, t in zip(args.get("Input Dims", []), args.get("Input Strides", []),
                                                      args.get("Input type", []), strict=False) if d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variant", default="bf16_cl_compile_pad")
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--width", type=int, default=736)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--iters", type=int, default=22)
    parser.add_argument("--steps", type=int, default=2, help="profiled steps (after 3 warm-up steps)")
    parser.add_argument("--top", type=int, default=8, help="kernels listed per phase")
    parser.add_argument("--sites", action="append", default=[], metavar="PATTERN",
                        help="report the CPU ops and input shapes behind kernels whose name contains PATTERN")
    args = parser.parse_args()
    from torch.profiler import ProfilerActivity, profile

    from skillbank.runtime.training.schedule import build_optimizer
    from skillbank.specs import OptimConfig

    dtype, flags = parse_variant(args.variant)
    if "compile" not in flags or "graph" in flags:
        raise SystemExit("--variant must compile regions and not use CUDA graphs (kernels need a CPU call site)")
    torch.backends.cudnn.benchmark = True
    model = build_model(flags)
    optimizer = build_optimizer(model.parameters(), OptimConfig(lr=1e-5), fused=True)  # as depth_net on a GPU
    step = step_fn(model, optimizer, make_batch(args.batch, args.height, args.width), args.iters, dtype,
                   compiled=True)
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=bool(args.sites)) as prof:
        for _ in range(args.steps):
            step()
        torch.cuda.synchronize()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(path))
        trace = json.loads(path.read_text())
    report = {"benchmark": __doc__.split("\n")[0], "variant": args.variant,
              "input": [args.batch, 3, args.height, args.width], "train_iters": args.iters,
              "device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              **phases_from_trace(trace, args.iters, args.steps, args.top, tuple(args.sites))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({p: v["ms_per_step"] for p, v in report["phases"].items()}))


if __name__ == "__main__":
    main()
