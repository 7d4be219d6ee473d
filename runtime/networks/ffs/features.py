"""FFS stage 1, features: the EdgeNeXt pyramid with the FFS 1/4 head.

:class:`FFSFeature` is :class:`~skillbank.runtime.networks.common.edgenext.EdgeNeXtPyramid` (shared
with FoundationStereo) plus a 1x1 conv lifting the 96-channel 1/4 feature to ``96 + vit_dim``
(224 for bp2: FFS was distilled from a teacher that fused 128 ViT channels there).
Pyramid widths: ``[96 + vit_dim, 192, 320, 304]``.
"""

from __future__ import annotations

import torch
from torch import nn

from skillbank.runtime.networks.common.edgenext import EDGENEXT_SMALL_DIMS, EdgeNeXtPyramid


class FFSFeature(EdgeNeXtPyramid):
    """The FFS image feature pyramid: :class:`EdgeNeXtPyramid` with a 1x1 conv lifting the 96-ch 1/4
    feature to ``96 + vit_dim`` (the channel band kept from distillation).

    Returns ``[x4, x8, x16, x32]`` with widths ``d_out = [96 + vit_dim, 192, 320, 304]``.
    """

    def __init__(self, vit_dim: int) -> None:
        super().__init__()
        c = EDGENEXT_SMALL_DIMS
        self.conv4 = nn.Conv2d(c[0] * 2, c[0] * 2 + vit_dim, kernel_size=1)
        self.d_out = [c[0] * 2 + vit_dim, c[1] * 2, c[2] * 2, c[3]]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x4, x8, x16, x32 = self.pyramid(x)
        return [self.conv4(x4), x8, x16, x32]
