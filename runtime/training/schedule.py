"""Optimiser and learning-rate schedule from ``train.optim``, stepped per OPTIMISER step.

The schedule is one multiplier of ``optim.lr`` as a function of the global optimiser step ``s``
(``T`` = total optimiser steps of the run, ``W`` = ``warmup_steps``, ``f`` = ``min_lr / lr``):

================== ====================================================================================
MultiStepLR        ``lr_decay ** (number of lr_steps <= s)``
StepLR             ``lr_decay ** (s // lr_step_size)``
LambdaLR           1 (constant after the warm-up; the "identity lambda")
PolynomialLR       ``f + (1 - f) * (1 - t) ** 0.9`` with ``t = (s - W) / (T - W)``
CosineAnnealingLR  ``f + (1 - f) * (1 + cos(pi t)) / 2``
OneCycleLR         upstream FoundationStereo's: rise linearly from 1/25 to 1 over the warm-up (1 % of T
                   when ``warmup_steps`` is 0), then fall linearly to ``f``
================== ====================================================================================

For every schedule but OneCycleLR a linear warm-up ``(s + 1) / W`` multiplies the first ``W`` steps.
Milestones (``lr_steps``, ``lr_step_size``) count global steps from 0, warm-up included.

A single :class:`torch.optim.lr_scheduler.LambdaLR` carries it, so the only state is the step count:
resuming restores it exactly. The multiplier is a picklable object (:class:`LRMultiplier`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

__all__ = ["LRMultiplier", "StepLambdaLR", "build_optimizer", "build_scheduler"]


@dataclass
class LRMultiplier:
    """The learning-rate multiplier at a global optimiser step (see the module docstring)."""

    scheduler: str
    total_steps: int
    warmup_steps: int = 0
    lr: float = 1e-4
    min_lr: float = 0.0
    lr_steps: tuple[int, ...] = ()
    lr_step_size: int = 1000
    lr_decay: float = 0.1

    def __call__(self, step: int) -> float:
        total = max(int(self.total_steps), 1)
        warm = int(self.warmup_steps)
        floor = min(self.min_lr / self.lr, 1.0) if self.lr > 0 else 0.0
        if self.scheduler == "OneCycleLR":
            rise = warm if warm > 0 else max(1, int(0.01 * total))
            if step < rise:
                return 1 / 25 + (1 - 1 / 25) * step / rise
            t = min(max((step - rise) / max(total - rise, 1), 0.0), 1.0)
            return 1.0 + (floor - 1.0) * t
        warmup = (step + 1) / warm if step < warm else 1.0
        t = min(max((step - warm) / max(total - warm, 1), 0.0), 1.0)
        if self.scheduler == "MultiStepLR":
            base = self.lr_decay ** sum(1 for m in self.lr_steps if m <= step)
        elif self.scheduler == "StepLR":
            base = self.lr_decay ** (step // max(int(self.lr_step_size), 1))
        elif self.scheduler == "LambdaLR":
            base = 1.0
        elif self.scheduler == "PolynomialLR":
            base = floor + (1 - floor) * (1 - t) ** 0.9
        elif self.scheduler == "CosineAnnealingLR":
            base = floor + (1 - floor) * (1 + math.cos(math.pi * t)) / 2
        else:
            raise ValueError(f"train.optim.lr_scheduler: unknown schedule {self.scheduler!r}")
        return warmup * base


class StepLambdaLR(torch.optim.lr_scheduler.LambdaLR):
    """LambdaLR whose saved state is only the step count: on resume the multiplier comes from the
    CURRENT spec (e.g. more epochs stretch a cosine), the position in it from the checkpoint."""

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["lr_lambdas"] = [None] * len(self.lr_lambdas)
        return state


def build_optimizer(params: Iterable[torch.nn.Parameter], optim_cfg, *, fused: bool = False) -> torch.optim.Optimizer:
    """AdamW (beta1 = ``momentum``) or SGD (momentum, weight decay) over the trainable parameters.

    ``fused``: PyTorch's single-kernel implementation (same update; on an H200 0.7 ms per FFS step
    against the multi-tensor default's 1.3). Only where no GradScaler scales the gradients (fp32,
    bf16): a fused optimiser would unscale them inside its step, after the clipping
    (:meth:`DepthNetModule.configure_gradient_clipping` clips for it, as Lightning refuses to).
    """
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("train: the network has no trainable parameters")
    impl = {"fused": True} if fused else {}
    if optim_cfg.optimizer == "AdamW":
        return torch.optim.AdamW(params, lr=optim_cfg.lr, betas=(optim_cfg.momentum, 0.999),
                                 weight_decay=optim_cfg.weight_decay, **impl)
    if optim_cfg.optimizer == "SGD":
        return torch.optim.SGD(params, lr=optim_cfg.lr, momentum=optim_cfg.momentum,
                               weight_decay=optim_cfg.weight_decay, **impl)
    raise ValueError(f"train.optim.optimizer: unknown optimiser {optim_cfg.optimizer!r} (AdamW, SGD)")


def build_scheduler(optimizer: torch.optim.Optimizer, optim_cfg, total_steps: int) -> StepLambdaLR:
    """The per-step LambdaLR carrying :class:`LRMultiplier` for ``optim_cfg``."""
    multiplier = LRMultiplier(
        scheduler=optim_cfg.lr_scheduler,
        total_steps=int(total_steps),
        warmup_steps=int(optim_cfg.warmup_steps),
        lr=float(optim_cfg.lr),
        min_lr=float(optim_cfg.min_lr),
        lr_steps=tuple(int(s) for s in optim_cfg.lr_steps),
        lr_step_size=int(optim_cfg.lr_step_size),
        lr_decay=float(optim_cfg.lr_decay),
    )
    return StepLambdaLR(optimizer, multiplier)
