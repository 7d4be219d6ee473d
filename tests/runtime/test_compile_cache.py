"""Compiled work reused across processes (runtime/compile_cache.py).

A second process that compiles the same region finds its kernels (Inductor's FX graph cache) and its
traced forward/backward (AOTAutograd's cache) on disk, also for graphs with an autocast block and a
custom autograd Function, which every FFS region holds and which AOTAutograd refuses by default.
Editing the Function's backward gives a new cache key: nothing stale is reused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# One compiled region shaped like the FFS ones: an fp32 block under autocast(enabled=False) and a
# custom autograd Function, run forward and backward under bf16 autocast.
REGION = r"""
import json, sys
import torch
from torch.autograd import Function
from torch._dynamo.utils import counters
from skillbank.runtime.compile_cache import prepare_compile_caches

SCALE = float(sys.argv[1])
folder = prepare_compile_caches() if sys.argv[2] == "prepared" else None


class Scaled(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return grad * SCALE


def region(x, w):
    with torch.autocast("cpu", enabled=False):
        p = torch.softmax(x.float() @ w.float(), dim=1)
    return (Scaled.apply(p) * torch.arange(p.shape[1], dtype=p.dtype)).sum()


x = torch.linspace(-1, 1, 32).reshape(4, 8).requires_grad_()
w = torch.linspace(0, 1, 48).reshape(8, 6)
with torch.autocast("cpu", dtype=torch.bfloat16):
    loss = torch.compile(region, fullgraph=True)(x, w)
loss.backward()
print(json.dumps({"aot": dict(counters["aot_autograd"]), "fx": dict(counters["inductor"]),
                  "grad": x.grad.tolist(), "folder": str(folder)}))
"""


def _run(tmp_path: Path, scale: float, mode: str = "prepared") -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    env["DEPTH_NET_CACHE_DIR"] = str(tmp_path / "cache")
    if mode != "prepared":
        env["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path / "torch_default")
    out = subprocess.run([sys.executable, "-c", REGION, str(scale), mode], env=env, capture_output=True,
                         text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_process_reuses_the_traced_graphs_and_kernels(tmp_path):
    cold = _run(tmp_path, 2.0)
    assert cold["folder"] == str(tmp_path / "cache" / "inductor")
    assert any((tmp_path / "cache" / "inductor").iterdir())        # the per-user folder, not torch's /tmp one
    assert cold["aot"].get("autograd_cache_saved") == 1 and "autograd_cache_bypass" not in cold["aot"]

    warm = _run(tmp_path, 2.0)
    assert warm["aot"].get("autograd_cache_hit") == 1
    assert warm["aot"].get("autograd_cache_miss", 0) == 0
    assert warm["grad"] == cold["grad"]

    edited = _run(tmp_path, 3.0)                       # the Function's backward changed: a new key
    assert edited["aot"].get("autograd_cache_miss") == 1 and "autograd_cache_hit" not in edited["aot"]
    flat = [g for row in cold["grad"] for g in row]                 # 1.5x the gradient, up to bf16 rounding
    assert [g for row in edited["grad"] for g in row] == pytest.approx([g * 1.5 for g in flat], rel=0.05)


@pytest.mark.slow
def test_without_it_aotautograd_refuses_these_graphs(tmp_path):
    """Why the module exists: by default such a graph bypasses AOTAutograd's cache in every process."""
    assert _run(tmp_path, 2.0, mode="default")["aot"].get("autograd_cache_bypass") == 1
