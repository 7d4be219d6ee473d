"""Compiled work reused across processes: the first compiled training step of a fresh process, cold and warm.

What an AutoML trial or a second ``depth_net train`` of the same model pays before its first fast step.
Each run is a new process that builds a tiny FFS, compiles its regions (``compile_regions()``, what
``train.compile`` runs) and times six training steps at 64x96 on the CPU, with one on-disk cache
folder shared by the runs of a setting:

* ``default``: torch's own cache rules. Kernels come from Inductor's FX graph cache in a warm process,
  but AOTAutograd bypasses its cache for every region (autocast blocks, custom autograd Functions), so
  each process re-traces and re-partitions the forward and backward.
* ``allowed``: :func:`skillbank.runtime.compile_cache.allow_aot_autograd_cache`, what ``train.compile``
  and the evaluate/inference fast path now run: the warm process loads the traced graphs too.

For each setting a cold run (empty folder) and a warm run; the JSON records the first step's seconds,
the steady steps and the cache counters, and whether the warm run's gradients equal the cold run's.
Regions compile for CUDA the same way (Triton instead of C++ kernels); this is the CPU measurement.

    python benchmarks/compile_reuse.py --out benchmarks/results/compile_reuse_cpu2.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cpu_info import cpu_model
from train_short_run import TINY_WIDTHS

TINY = {"model_type": "FastFoundationStereo", "max_disparity": 64, "volume_dim": 8, "train_iters": 3,
        "valid_iters": 3, **TINY_WIDTHS}
STEPS = 6


def child(setting: str, grads_out: str) -> None:
    """One process: compile, six training steps, print timings and counters as JSON."""
    t0 = time.perf_counter()
    from types import SimpleNamespace

    import torch
    from torch._dynamo.utils import counters

    from skillbank.runtime.compile_cache import allow_aot_autograd_cache
    from skillbank.runtime.networks.factory import build_network

    if setting == "allowed":
        allow_aot_autograd_cache()
    torch.manual_seed(0)
    model = build_network(SimpleNamespace(**TINY)).train()
    model.deferred_weight_grads = False
    model.compile_regions()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    left, right = (torch.randn(1, 3, 64, 96, generator=gen) for _ in range(2))
    import_s = time.perf_counter() - t0
    steps = []
    for _ in range(STEPS):
        t = time.perf_counter()
        init, preds = model(left, right, iters=3)
        loss = sum(p.abs().mean() for p in preds) + init.abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps.append(round(time.perf_counter() - t, 2))
    torch.save({n: p.grad for n, p in model.named_parameters() if p.grad is not None}, grads_out)
    keep = ("fxgraph_cache_hit", "fxgraph_cache_miss", "autograd_cache_hit", "autograd_cache_miss",
            "autograd_cache_bypass", "autograd_cache_saved")
    flat = {k: v for group in ("inductor", "aot_autograd") for k, v in counters[group].items() if k in keep}
    print(json.dumps({"import_and_build_s": round(import_s, 1), "first_step_s": steps[0],
                      "steady_step_median_s": sorted(steps[1:])[len(steps[1:]) // 2], "steps_s": steps,
                      "counters": flat}))


def run(setting: str, cache: Path, grads: Path) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
    load = os.getloadavg()[0]
    done = subprocess.run([sys.executable, __file__, "--child", setting, "--grads", str(grads)], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{setting} run failed: {done.stderr.strip()[-2000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "load_before": round(load, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="result JSON (printed when not given)")
    p.add_argument("--child", choices=("default", "allowed"), help=argparse.SUPPRESS)
    p.add_argument("--grads", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.grads)
        return

    import torch

    result: dict = {"benchmark": "compile_reuse", "processor": cpu_model(), "cpu_count": os.cpu_count(),
                    "machine": f"{platform.machine()}, torch {torch.__version__}, python {platform.python_version()}",
                    "settings": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for setting in ("default", "allowed"):
            cache = Path(tmp) / setting
            cold = run(setting, cache, Path(tmp) / f"{setting}_cold.pt")
            warm = run(setting, cache, Path(tmp) / f"{setting}_warm.pt")
            a, b = torch.load(Path(tmp) / f"{setting}_cold.pt"), torch.load(Path(tmp) / f"{setting}_warm.pt")
            same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
            result["settings"][setting] = {"cold": cold, "warm": warm, "warm_grads_equal_cold": same}
            print(setting, json.dumps(result["settings"][setting]), flush=True)
    d, a = result["settings"]["default"]["warm"], result["settings"]["allowed"]["warm"]
    result["warm_first_step_speedup"] = round(d["first_step_s"] / a["first_step_s"], 2)
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        from skillbank.atomic import atomic_write

        atomic_write(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
