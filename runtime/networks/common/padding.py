"""Centred replicate padding to a multiple of N, and the matching crop.

Stereo networks downsample by 32 (EdgeNeXt's last stage), so inputs are padded to a multiple
of 32. The padding is split evenly (the extra pixel goes right / bottom), uses replicated
border pixels (as TAO's ``InputPadder`` / ``CenterPadding`` do) and every output is cropped
back with :func:`unpad`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def centred_pad_amounts(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """Return ``(left, right, top, bottom)`` padding that makes H and W multiples of ``multiple``."""
    if multiple < 1:
        raise ValueError(f"padding multiple must be >= 1, got {multiple}")
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    return pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Replicate-pad a (B, C, H, W) tensor, centred, to a multiple of ``multiple``.

    Returns the padded tensor and the ``(left, right, top, bottom)`` amounts for :func:`unpad`.
    """
    if x.dim() != 4:
        raise ValueError(f"expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    pads = centred_pad_amounts(int(x.shape[-2]), int(x.shape[-1]), multiple)
    if pads == (0, 0, 0, 0):
        return x, pads
    return F.pad(x, pads, mode="replicate"), pads


def unpad(x: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
    """Crop the border that :func:`pad_to_multiple` added (works on any ``(..., H, W)`` tensor)."""
    left, right, top, bottom = pads
    if pads == (0, 0, 0, 0):
        return x
    height, width = x.shape[-2], x.shape[-1]
    return x[..., top:height - bottom, left:width - right]


def unpad_quarter(x: torch.Tensor, pads: tuple[int, int, int, int], height: int, width: int) -> torch.Tensor:
    """Crop a 1/4-resolution map of the padded input to the unpadded image's ``ceil(H/4) x ceil(W/4)``
    cells (row ``k`` then covers unpadded rows ``4k .. 4k+3``; exact when the padding is a multiple of
    4, e.g. for H and W multiples of 8; with no padding, a no-op)."""
    left, _, top, _ = pads
    return x[..., top // 4: top // 4 + -(-height // 4), left // 4: left // 4 + -(-width // 4)]
