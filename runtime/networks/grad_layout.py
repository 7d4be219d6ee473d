"""The memory layout a tensor's gradient arrives in.

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

__all__ = ["grad_in_layout"]


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
