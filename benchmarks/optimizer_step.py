"""Gradient clipping + AdamW over FFS bp2's trainable parameters: the ways to run the step's tail.

The FFS training step ends with ``clip_grad_norm_(0.1)`` and AdamW over 422 parameter tensors
(14.8 M values, widths padded). PyTorch's fused AdamW launches one kernel per 36 tensors (12 a
step), most of them blocks of small tensors; the clipping adds a foreach norm and a foreach
multiply (4 launches each). GPU time per step tail (median of ``--runs`` CUDA-event timings of
``--repeat`` tails back to back, queued while the GPU sleeps: the host's launch time, ~2-4 ms here
and hidden behind the backward in a training step, is reported apart), for:

* ``fused``: ``clip_grad_norm_`` then fused AdamW (what ``depth_net train`` runs on a GPU);
* ``fused_scale``: the norm only, then fused AdamW told to divide the gradients by
  ``max(1, norm / max_norm)`` (``optimizer.grad_scale``, the GradScaler's hook): no multiply pass;
* ``compiled``: clipping and a foreach AdamW (tensor learning rate) under ``torch.compile``
  (its host time, guards over 422 tensors, is ~13 ms a step on an H100: not an option as it is);
* ``fused_noclip`` / ``compiled_noclip``: AdamW alone.

Every variant must update the parameters as ``fused`` does (largest difference reported).

    python benchmarks/optimizer_step.py --out benchmarks/results/optimizer_step_h100.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from skillbank.runtime.networks.grad_layout import memory_format_of

MAX_NORM = 0.1
#: ~0.5 s of GPU sleep (at ~1.8 GHz) ahead of each timed run: longer than the host needs to queue it
SLEEP_CYCLES = 900_000_000


def _params() -> list[torch.Tensor]:
    from train_throughput import build_model

    model = build_model({"cl", "pad"})
    return [p.detach() for p in model.parameters() if p.requires_grad]


def _tail(name: str, params: list[torch.nn.Parameter]):
    opt_kw: dict[str, Any] = {"betas": (0.9, 0.999), "weight_decay": 1e-5}
    if name.startswith("compiled"):
        opt = torch.optim.AdamW(params, lr=torch.tensor(1e-4, device="cuda"), foreach=True, capturable=True, **opt_kw)

        @torch.compile(fullgraph=False)
        def step() -> None:
            if name == "compiled":
                torch.nn.utils.clip_grad_norm_(params, MAX_NORM, foreach=True)
            opt.step()
        return step
    opt = torch.optim.AdamW(params, lr=1e-4, fused=True, **opt_kw)

    def fused_step() -> None:
        if name == "fused":
            torch.nn.utils.clip_grad_norm_(params, MAX_NORM, foreach=True)
        elif name == "fused_scale":
            norms = torch._foreach_norm([p.grad for p in params])
            total = torch.linalg.vector_norm(torch.stack(norms))
            opt.grad_scale = torch.clamp((total + 1e-6) / MAX_NORM, min=1.0).float()
        opt.step()
    return fused_step


def _time_ms(fn, repeat: int, runs: int) -> tuple[float, float]:
    """GPU milliseconds per call, and the host's: the GPU first sleeps ``SLEEP_CYCLES`` while the host
    queues the calls, so the timing sees the GPU's work, not the launch overhead (in the training
    step the tail is queued while the backward runs). A host slower than the sleep is reported."""
    times, host = [], []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(SLEEP_CYCLES)
        start.record()
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        host.append((time.perf_counter() - t0) * 1000 / repeat)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / repeat)
    return round(statistics.median(times), 4), round(statistics.median(host), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", default="fused,fused_scale,fused_noclip,compiled,compiled_noclip")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    base = _params()
    g = torch.Generator(device="cuda").manual_seed(0)
    grads = [torch.randn(p.shape, device="cuda", generator=g).contiguous(memory_format=memory_format_of(p)) * 0.01
             for p in base]
    results: dict[str, Any] = {}
    final: dict[str, list[torch.Tensor]] = {}
    for name in args.variants.split(","):
        params = [torch.nn.Parameter(p.clone()) for p in base]
        for p, grad in zip(params, grads, strict=True):
            p.grad = grad.clone()
        step = _tail(name, params)
        t0 = time.perf_counter()
        for _ in range(3):                        # warm-up (and compile): the values compared below
            step()
        torch.cuda.synchronize()
        final[name] = [p.detach().clone() for p in params]
        ms, host_ms = _time_ms(step, args.repeat, args.runs)
        ref = final.get("fused" if "noclip" not in name else "fused_noclip")
        diff = None if ref is None else max(float((a - b).abs().max()) for a, b in zip(final[name], ref, strict=True))
        results[name] = {"gpu_ms_per_step_tail": ms, "host_ms_per_step_tail": host_ms,
                         "host_slower_than_sleep": host_ms * args.repeat > 400,
                         "first_steps_s": round(time.perf_counter() - t0, 1),
                         "max_abs_diff_vs_fused_after_3_steps": diff}
        print(name, json.dumps(results[name]), flush=True)
    report = {"benchmark": __doc__.split("\n")[0], "device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "tensors": len(base), "values": sum(p.numel() for p in base),
              "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
