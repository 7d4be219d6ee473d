"""Write ``data/ffs_tiny_golden.pt``: a tiny seeded FFS's train-mode outputs and gradients, and its
test-mode output, as the network computed them before the speed rewrites of the GRU gates, the heads
and the upsampling (commit 32672d1). ``test_ffs_golden.py`` holds every later version to them.

    git worktree add /tmp/ffs-golden 32672d1   # or any commit whose network is the reference
    PYTHONPATH=<that checkout's import root> python tests/networks/make_ffs_golden.py

Everything random here is drawn in float64 and rounded to float32 (weights, inputs, the loss weighting,
the projection directions), and dropout is off: float32 ``randn`` takes a vectorised path that rounds
differently without AVX2, and dropout masks come from MKL's generator on Intel CPUs only, so either would
make the reference depend on the machine rather than on the network.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import torch
from ffs_configs import TINY, config
from torch import nn

from skillbank.runtime.networks.factory import build_network

OUT = Path(__file__).parent / "data" / "ffs_tiny_golden.pt"
ITERS = 3


def draw(shape: tuple[int, ...] | torch.Size, seed: int, kind: str = "normal") -> torch.Tensor:
    """float64 standard normal (or uniform [0, 1)) values: the same on every CPU."""
    g = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        return torch.rand(shape, generator=g, dtype=torch.float64)
    return torch.randn(shape, generator=g, dtype=torch.float64)


def recipe_value(key: str, t: torch.Tensor) -> torch.Tensor:
    """Seeded weights by role (He-scaled filters, norms near 1, small biases, spread BatchNorm
    statistics), keyed by the tensor's name so that construction order does not matter."""
    seed = zlib.crc32(key.encode())
    last = key.rsplit(".", 1)[-1]
    shape = t.shape
    if last == "running_var":
        return 0.5 + draw(shape, seed, "uniform")
    if last == "running_mean":
        return 0.1 * draw(shape, seed)
    if (last == "weight" and t.dim() == 1) or last == "temperature":
        return 1 + 0.1 * draw(shape, seed)
    if t.dim() <= 1:
        return 0.1 * draw(shape, seed)
    return draw(shape, seed) * math.sqrt(2.0 / math.prod(shape[1:]))


def golden_model(dtype: torch.dtype = torch.float32) -> nn.Module:
    model = build_network(config(TINY))
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(recipe_value(key, t))
    return model.to(dtype)


def golden_inputs(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    left = draw((2, 3, 40, 70), 11)
    right = torch.roll(left, -5, dims=3) + 0.05 * draw((2, 3, 40, 70), 12)
    return left.float().to(dtype), right.float().to(dtype)


def golden_run(model: nn.Module, *, keep_grads: bool = False) -> dict:
    """Train mode (``ITERS`` iterations, dropout off): the outputs and, per parameter, the norm of the
    gradient of a fixed weighting of them and its projection on a seeded direction (the gradients of
    the 10M parameters would be 40 MB); then test mode (eval). Runs in the model's dtype; with
    ``keep_grads`` the whole gradients come back too (``grads``, float64)."""
    dtype = next(model.parameters()).dtype
    left, right = golden_inputs(dtype)
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    model.train().zero_grad(set_to_none=True)
    init, preds = model(left, right, iters=ITERS)
    loss = (init * draw(init.shape, 13).float().to(init.dtype)).sum()
    for k, p in enumerate(preds):
        loss = loss + (p * draw(p.shape, 14 + k).float().to(p.dtype)).sum()
    loss.backward()
    out: dict = {"init": init.detach(), "preds": torch.stack([p.detach() for p in preds])}
    grads = [(n, p.grad.double()) for n, p in model.named_parameters() if p.grad is not None]
    out["grad_names"] = [n for n, _ in grads]
    out["grad_norm"] = torch.stack([t.norm() for _, t in grads])
    out["grad_proj"] = torch.stack([(t * draw(t.shape, 100 + i)).sum() for i, (_, t) in enumerate(grads)])
    if keep_grads:
        out["grads"] = [t for _, t in grads]
    with torch.no_grad():
        out["test"] = model.eval()(left, right, iters=ITERS, test_mode=True)
    return out


def float32_error(run32: dict, run64: dict) -> dict[str, torch.Tensor]:
    """How far float32 rounding moved each quantity on this machine: the float32 run's distance from
    the same network's float64 run (``keep_grads`` runs). Outputs: the largest absolute difference;
    gradients: per parameter, the norm of the whole gradient's difference (which bounds the error of
    the gradient's norm and sets the spread of its projection's)."""
    err = {k: (run32[k].double() - run64[k].double()).abs().max() for k in ("init", "preds", "test")}
    err["grad"] = torch.stack([(a - b).norm() for a, b in zip(run32["grads"], run64["grads"], strict=True)])
    return err


def reference_runs() -> tuple[dict, dict]:
    """The float32 run and its float32 error (against the float64 run) on this machine."""
    run32 = golden_run(golden_model(), keep_grads=True)
    error = float32_error(run32, golden_run(golden_model(torch.float64), keep_grads=True))
    return {k: v for k, v in run32.items() if k != "grads"}, error


if __name__ == "__main__":
    torch.use_deterministic_algorithms(True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    run, error = reference_runs()
    torch.save({**run, "float32_error": error, "torch_version": torch.__version__.split("+")[0]}, OUT)
    print(f"wrote {OUT}")
