"""A node that hands out gradients accumulated elsewhere, once every node that took its token has run
backward.

The training lookup (:mod:`training_lookup`) and the deferred weight gradients
(:mod:`deferred_weight_grads`) compute their inputs' gradients outside autograd, across the 22
iterations of a forward, and must give them back through autograd only after the last iteration's
backward. :class:`GradientSink` orders that: its inputs are the tensors whose gradients it hands out
and its output is a scalar token that every iteration's node takes as an input. Autograd runs its
backward only after all of the token's consumers, and then ``hand_out(needs_input_grad)`` returns the
gradients. The consumers give the token :func:`token_grad` as its gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.autograd import Function

__all__ = ["GradientSink", "token_grad"]


class GradientSink(Function):
    """``GradientSink.apply(hand_out, device, *inputs)`` -> token (a zero fp32 scalar on ``device``)."""

    @staticmethod
    def forward(ctx: Any, hand_out: Callable[[tuple[bool, ...]], tuple[torch.Tensor | None, ...]],
                device: torch.device, *inputs: torch.Tensor) -> torch.Tensor:
        ctx.hand_out = hand_out
        return torch.zeros((), dtype=torch.float32, device=device)

    @staticmethod
    def backward(ctx: Any, grad_token: torch.Tensor) -> tuple[Any, ...]:
        return (None, None, *ctx.hand_out(ctx.needs_input_grad[2:]))


def token_grad(device: torch.device) -> torch.Tensor:
    """The gradient a token consumer returns for the token (nothing flows through it)."""
    return torch.zeros((), dtype=torch.float32, device=device)
