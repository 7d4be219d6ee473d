"""Conv3d: bf16 CPU weight gradients right where oneDNN's own kernel is wrong (depth padding >= half the
depth), and (slow: ~10 s of CPU, more on a loaded machine) tiny FastFoundationStereo bf16 CPU training
steps that this used to abort or turn NaN.

The broken kernel (oneDNN ``jit_bf16``, AVX-512 CPUs) could corrupt the heap and abort the process, so
everything that runs it is checked in a subprocess. On CPUs without it the checks pass as well.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from skillbank.runtime.networks.common.conv3d import Conv3d, pads_depth_itself

TESTS_RUNTIME = Path(__file__).resolve().parents[1] / "runtime"


def _run(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "MALLOC_CHECK_": "3", "PYTHONFAULTHANDLER": "1"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_depth_padding_is_explicit_only_for_a_bf16_cpu_weight_gradient():
    conv = Conv3d(4, 4, (9, 1, 1), padding=(4, 0, 0))
    shallow, deep = torch.randn(1, 4, 8, 2, 2), torch.randn(1, 4, 9, 2, 2)
    assert pads_depth_itself(conv, shallow.bfloat16())          # 2 * 4 >= 8
    assert not pads_depth_itself(conv, deep.bfloat16())
    assert not pads_depth_itself(conv, shallow)                 # fp32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert pads_depth_itself(conv, shallow)                 # fp32 input, bf16 compute
    with torch.no_grad():
        assert not pads_depth_itself(conv, shallow.bfloat16())
    conv.weight.requires_grad_(False)
    assert not pads_depth_itself(conv, shallow.bfloat16())


@pytest.mark.parametrize(("batch", "depth", "kernel"), [(2, 4, (13, 1, 1)), (2, 8, (9, 1, 1)), (4, 2, (3, 3, 3)),
                                                        (1, 4, (7, 1, 1))])
def test_bf16_cpu_output_and_gradients_match_fp64(batch, depth, kernel):
    """Shapes of the tiny FFS's hourglass where oneDNN's bf16 weight gradient was NaN/inf/garbage or aborted."""
    proc = _run(f"""
        import torch, torch.nn.functional as F
        from skillbank.runtime.networks.common.conv3d import Conv3d
        torch.manual_seed(0)
        k = {kernel}; p = tuple(i // 2 for i in k)
        conv = Conv3d(16, 16, k, padding=p)
        x = torch.randn({batch}, 16, {depth}, 4, 8)
        g = torch.randn({batch}, 16, {depth}, 4, 8)
        w = conv.weight.detach().double().requires_grad_()
        xd = x.double().requires_grad_()
        ref = F.conv3d(xd, w, conv.bias.double(), padding=p)
        ref.backward(g.double())
        xb = x.bfloat16().requires_grad_()
        out = conv.bfloat16()(xb)
        out.backward(g.bfloat16())
        def err(a, b):
            return ((a.double() - b).abs().max() / b.abs().max()).item()
        errs = [err(out, ref), err(xb.grad, xd.grad), err(conv.weight.grad, w.grad)]
        print("relative errors (output, input grad, weight grad)", errs)
        assert max(errs) < 0.02, errs
    """)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]


@pytest.mark.slow
def test_tiny_ffs_bf16_cpu_training_steps_finish_with_a_finite_loss():
    """Batch 2 at 64x128 aborted in the first backward (heap corruption); batch 1 trained on garbage
    weight gradients and its loss was NaN by the second step."""
    proc = _run(f"""
        import sys, torch
        sys.path.insert(0, {str(TESTS_RUNTIME)!r})
        from types import SimpleNamespace
        from runtime_helpers import tiny_ffs_model
        from skillbank.runtime.networks.ffs.model import FastFoundationStereo
        from skillbank.runtime.training.loss import stereo_loss_fn
        torch.manual_seed(0)
        model = FastFoundationStereo(SimpleNamespace(**tiny_ffs_model())).train()
        loss_fn = stereo_loss_fn(3, 64)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for batch, steps in ((2, 1), (1, 2)):
            left, right = torch.randn(batch, 3, 64, 128), torch.randn(batch, 3, 64, 128)
            gt, valid = torch.rand(batch, 1, 64, 128) * 30, torch.ones(batch, 1, 64, 128)
            for step in range(steps):
                opt.zero_grad()
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    loss = loss_fn(model, left, right, gt, valid)
                loss.backward()
                grads = [p.grad for p in model.parameters() if p.grad is not None]
                assert all(torch.isfinite(g).all() for g in grads), "non-finite weight gradient"
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                print("batch", batch, "step", step, "loss", float(loss), flush=True)
                assert torch.isfinite(loss), float(loss)
    """, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert proc.stdout.count(" loss ") == 3
