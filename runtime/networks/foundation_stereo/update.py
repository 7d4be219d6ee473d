"""FoundationStereo iterative refinement: motion encoder, multi-level selective ConvGRU, disparity head.

One iteration (``BasicSelectiveMultiUpdateBlock``), coarse levels first when ``n_gru_layers`` > 1:
- ``gru16`` (1/16): context + pooled 1/8 hidden state;
- ``gru08`` (1/8): context + pooled 1/4 state (+ upsampled 1/16 state);
- motion features at 1/4 from the lookup (``corr`` 522 ch) and the disparity: 1x1 + 3x3 convs on the
  lookup, 7x7 + 3x3 on the disparity, a 3x3 fuse, then the disparity itself is appended;
- ``gru04`` (1/4): context + motion (+ upsampled 1/8 state).
Each selective ConvGRU first convs its input (``conv0``), convs [input, h] (``conv1``) to the gate input,
then blends a 1x1 GRU and a 3x3 GRU by the spatial attention map: ``att * small + (1 - att) * large``.
The disparity head (conv, ReLU, two EdgeNeXt blocks without norm, conv) gives the 1/4-res delta; the
mask head gives the features of the convex upsampler (scaled by 0.25 as upstream).

Widths come from :class:`UpdateWidths` (teacher defaults, FFS width fields when set). The building
blocks (motion encoder, selective ConvGRU, disparity head) are the ones FFS uses too
(:mod:`~skillbank.runtime.networks.common.update_layers`); this module adds the 1/8 and 1/16 levels
FoundationStereo runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from skillbank.runtime.networks.common.update_layers import DispHead, MotionEncoder, SelectiveConvGRU


@dataclass(frozen=True)
class UpdateWidths:
    """Every width of the update block (docs/networks.md, "The 15 width fields", "FS teacher" column)."""

    corr_planes: int  # corr_levels * (2r + 1) * (volume_dim + 1)
    hidden: int  # GRU hidden width, all levels
    context: int  # context (GRU input) width per level
    motion: tuple[int, int, int, int]  # convc1, convc2, convd1, convd2
    motion_final: int  # motion conv output; the disparity is appended (+1)
    gating04: tuple[int, int] | None  # gru04 conv0, conv1 widths; None = (input, input + hidden)
    disp_mid: int
    disp_pw: tuple[int, int]
    mask: tuple[int, int]
    n_gru_layers: int = 3


def _teacher_gru(hidden: int, input_dim: int) -> SelectiveConvGRU:
    """Upstream's widths: conv0 keeps the input width, conv1 outputs input + hidden."""
    return SelectiveConvGRU(hidden, input_dim, [input_dim, input_dim + hidden])


def _pool2x(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=2, padding=1)


def _interp(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, like.shape[2:], mode="bilinear", align_corners=True)


class BasicSelectiveMultiUpdateBlock(nn.Module):
    """One refinement step over 1..3 GRU levels (see the module docstring)."""

    def __init__(self, w: UpdateWidths) -> None:
        super().__init__()
        self.n_gru_layers = w.n_gru_layers
        hid, ctx = w.hidden, w.context
        self.encoder = MotionEncoder(w.corr_planes, list(w.motion), w.motion_final)
        if w.n_gru_layers == 3:
            self.gru16 = _teacher_gru(hid, ctx + hid)
        if w.n_gru_layers >= 2:
            self.gru08 = _teacher_gru(hid, ctx + hid + hid * (w.n_gru_layers == 3))
        gru04_in = ctx + w.motion_final + 1 + hid * (w.n_gru_layers > 1)
        gating = list(w.gating04) if w.gating04 is not None else [gru04_in, gru04_in + hid]
        self.gru04 = SelectiveConvGRU(hid, gru04_in, gating)
        self.disp_head = DispHead(hid, w.disp_mid, list(w.disp_pw))
        self.mask = nn.Sequential(
            nn.Conv2d(hid, w.mask[0], 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(w.mask[0], w.mask[1], 3, padding=1),
            nn.ReLU(inplace=True),
        )

    def forward(self, net: list[torch.Tensor], inp: list[torch.Tensor], corr: torch.Tensor,
                disp: torch.Tensor, att: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor,
                                                                      torch.Tensor]:
        net = list(net)
        if self.n_gru_layers == 3:
            net[2] = self.gru16(att[2], net[2], torch.cat((inp[2], _pool2x(net[1])), dim=1))
        if self.n_gru_layers >= 2:
            extra = [_interp(net[2], net[1])] if self.n_gru_layers == 3 else []
            net[1] = self.gru08(att[1], net[1], torch.cat([inp[1], _pool2x(net[0]), *extra], dim=1))
        motion = self.encoder(disp, corr)
        extra = [_interp(net[1], net[0])] if self.n_gru_layers > 1 else []
        net[0] = self.gru04(att[0], net[0], torch.cat([inp[0], motion, *extra], dim=1))
        delta = self.disp_head(net[0])
        mask = 0.25 * self.mask(net[0])
        return net, mask, delta
