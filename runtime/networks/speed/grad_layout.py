"""The memory layout a tensor's gradient arrives in (and a tensor's own: :func:`memory_format_of`).

Under ``torch.compile`` Inductor picks the strides of each gradient the backward computes, usually
those of the tensors the kernel reads. Where that is not the layout the gradient's consumer needs,
an eager kernel converts it with a slow strided copy: cuDNN's ``convolution_backward`` copied the
upsampling logits' NCHW gradient (written by the softmax's backward) to channels_last, 207 MB, ~0.4
ms of a training step on an H100. :func:`grad_in_layout` is the identity whose backward asks for the
consumer's layout: the kernel that computes the gradient then writes it so, and nothing converts it
afterwards. Values are unchanged. (It only reaches the tensor's own gradient: where an op of the
compiled backward converts the gradient again, as the group-wise correlation's matmul did, the op
needs its own backward, ``cost_volume._RowPairs``.)
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd import Function

__all__ = ["grad_in_layout", "memory_format_of"]


class _GradInLayout(Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
        ctx.memory_format = memory_format
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.contiguous(memory_format=ctx.memory_format), None


def grad_in_layout(x: torch.Tensor, memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """``x``, whose gradient will be ``memory_format``-contiguous (``x`` itself when no gradient flows)."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x
    return _GradInLayout.apply(x, memory_format)


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``channels_last`` (4D) or ``channels_last_3d`` (5D) where ``x`` is laid out so and not also
    NCHW-contiguous (degenerate sizes), else ``contiguous_format``: the layout to keep a tensor
    computed from ``x`` in, or to ask its gradient for (:func:`grad_in_layout`)."""
    fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(x.dim())
    if fmt is not None and x.is_contiguous(memory_format=fmt) and not x.is_contiguous():
        return fmt
    return torch.contiguous_format
