"""``Conv3d``: ``nn.Conv3d`` whose weight gradient is right in bf16 on the CPU.

oneDNN's bf16 backward-weights kernel for 3D convolutions on the CPU (``jit_bf16``, chosen on AVX-512
machines; the oneDNN of torch 2.13) is wrong when the depth padding is large next to the input depth:
with ``2 * padding_d >= D`` (a kernel window hangs over both ends of the depth axis, e.g. FFS's disparity
kernel 17 or a 3x3x3 kernel on a cost volume only 2 levels deep) it returns garbage, inf or NaN weight
gradients, depending on the batch and the thread count, and at times writes outside its buffer, which
aborts the process (glibc "double free or corruption", "munmap_chunk(): invalid pointer"). The input
gradient, the forward, fp32, fp16 and oneDNN's AVX2 kernel are right; padding along H and W is not
affected.

Where a bf16 CPU weight gradient would come from that kernel, :class:`Conv3d` zero-pads the depth
axis itself and convolves without depth padding: the same products of the same zeros, exact. Everywhere
else (GPUs, fp32, inference, frozen weights) it is ``nn.Conv3d`` untouched; parameters and state_dict
keys are ``nn.Conv3d``'s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Conv3d", "pads_depth_itself"]


def pads_depth_itself(conv: nn.Conv3d, x: torch.Tensor) -> bool:
    """Whether ``conv`` on ``x`` pads the depth axis explicitly (see the module docstring)."""
    if x.device.type != "cpu" or not isinstance(conv.padding, tuple) or conv.padding_mode != "zeros":
        return False
    if not (torch.is_grad_enabled() and conv.weight.requires_grad):
        return False
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    pad = conv.padding[0]
    return dtype == torch.bfloat16 and pad > 0 and 2 * pad >= x.shape[2]


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` with the depth padding done explicitly where oneDNN's bf16 weight gradient is wrong."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if not pads_depth_itself(self, input):
            return super()._conv_forward(input, weight, bias)
        pad = self.padding[0]
        return F.conv3d(F.pad(input, (0, 0, 0, 0, pad, pad)), weight, bias, self.stride, (0, *self.padding[1:]),
                        self.dilation, self.groups)
