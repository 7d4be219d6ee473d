"""Write ``data/ffs_tiny_golden.pt``: a tiny seeded FFS's train-mode outputs and gradients, and its
test-mode output, as the network computed them before the speed rewrites of the GRU gates, the heads
and the upsampling (commit 32672d1). ``test_ffs_golden.py`` holds every later version to them.

    git worktree add /tmp/ffs-golden 32672d1   # or any commit whose network is the reference
    PYTHONPATH=<that checkout's import root> python tests/networks/make_ffs_golden.py
"""

from __future__ import annotations

from pathlib import Path

import torch
from ffs_configs import TINY, config

from skillbank.runtime.networks.factory import build_network

OUT = Path(__file__).parent / "data" / "ffs_tiny_golden.pt"


def golden_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    left = torch.randn(2, 3, 40, 70, generator=g)
    return left, torch.roll(left, -5, dims=3) + 0.05 * torch.randn(2, 3, 40, 70, generator=g)


def golden_run(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Train mode (3 iterations, dropout seeded): outputs and the gradient of a fixed weighting of
    them per parameter; then test mode (eval, 3 iterations)."""
    left, right = golden_inputs()
    model.train().zero_grad(set_to_none=True)
    torch.manual_seed(5)
    init, preds = model(left, right, iters=3)
    g = torch.Generator().manual_seed(13)
    loss = (init * torch.randn(init.shape, generator=g)).sum()
    for p in preds:
        loss = loss + (p * torch.randn(p.shape, generator=g)).sum()
    loss.backward()
    out = {"init": init.detach(), "preds": torch.stack([p.detach() for p in preds])}
    # per parameter: the gradient's norm and its projection on a seeded random direction (the whole
    # gradients of the 10M parameters would be 40 MB)
    g = torch.Generator().manual_seed(17)
    grads = [(n, p.grad) for n, p in model.named_parameters() if p.grad is not None]
    out["grad_names"] = [n for n, _ in grads]
    out["grad_norm"] = torch.stack([t.norm() for _, t in grads])
    out["grad_proj"] = torch.stack([(t * torch.randn(t.shape, generator=g)).sum() for _, t in grads])
    with torch.no_grad():
        out["test"] = model.eval()(left, right, iters=3, test_mode=True)
    return out


def golden_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network(config(TINY))


if __name__ == "__main__":
    torch.use_deterministic_algorithms(True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**golden_run(golden_model()), "torch_version": torch.__version__.split("+")[0]}, OUT)
    print(f"wrote {OUT}")
