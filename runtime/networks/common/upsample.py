"""Learned 4x convex upsampling of the 1/4-resolution disparity.

A stride-2 image stem (``stem_2``, 1/2 resolution) meets the GRU mask features upsampled by a
transposed conv (``spx_2_gru``); a last transposed conv (``spx_gru``) predicts 9 logits per
full-resolution pixel, a softmax turns them into convex weights over the 3x3 neighbourhood of
the coarse pixel it falls in, and the output is the weighted sum of ``4 * disparity`` there
(zero outside the image, as ``F.unfold`` pads).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from skillbank.runtime.networks.common.blocks import ConvNormAct, InstanceNorm2d, UpsampleFuse


def build_stem_2(widths: list[int]) -> nn.Sequential:
    """Image stem to 1/2 resolution: 3x3/2 conv + InstanceNorm + LeakyReLU, 3x3 conv + InstanceNorm + ReLU."""
    return nn.Sequential(
        ConvNormAct(3, widths[0], conv="conv2d", norm="instance2d", kernel_size=3, stride=2, padding=1),
        nn.Conv2d(widths[0], widths[1], 3, 1, 1, bias=False),
        InstanceNorm2d(widths[1]),
        nn.ReLU())


def build_spx_2_gru(widths: list[int]) -> UpsampleFuse:
    """``[in, mid, rem, out]``: deconv in -> mid (LeakyReLU), concat the stem (rem), 3x3 conv -> out."""
    c_in, c_mid, c_rem, c_out = widths
    return UpsampleFuse(c_in, c_mid, c_rem, norm=None, fuse="conv", fuse_channels=c_out, fuse_act=True)


def build_spx_gru(in_channels: int, out_channels: int = 9) -> nn.Sequential:
    """Transposed conv from 1/2 to full resolution giving the 9 upsampling logits per pixel."""
    return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1))


def convex_upsample(disp: torch.Tensor, weights: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """Weighted sum of the 3x3 neighbourhood of ``disp * factor`` with per-pixel convex weights.

    Args:
        disp: (B, 1, h, w) coarse disparity.
        weights: (B, 9, h * factor, w * factor), softmax-normalised over the 9 taps
            (row-major 3x3 order, as ``F.unfold`` lists them).

    Returns:
        (B, 1, h * factor, w * factor). Equivalent to unfold + nearest upsampling + sum, without
        materialising the upsampled neighbourhoods.
    """
    b, _, h, w = disp.shape
    padded = F.pad(disp * float(factor), (1, 1, 1, 1))
    taps = torch.cat([padded[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3)], dim=1)
    weights = weights.reshape(b, 9, h, factor, w, factor)
    up = (taps.view(b, 9, h, 1, w, 1) * weights).sum(dim=1)
    return up.reshape(b, 1, h * factor, w * factor)
