"""FoundationStereo cost filtering: 3D hourglass with Axial-Planar convs, feature gating, Disparity Transformer.

Volume widths for ``volume_dim`` V: V -> 2V (1/8) -> 4V (1/16) -> 6V (1/32), each a stride-2 3x3x3
ConvNormAct followed by an Axial-Planar Convolution (spatial (1,3,3) then disparity (17,1,1)); after each
scale the volume is gated by the image feature of that scale (``feature_att_*``: sigmoid of a 1x1-conv'd
feature, broadcast over disparity). The decoder deconvolves back, concatenates the skip and fuses with a 1x1
conv and two APCs (``agg_0``, ``agg_1``), gated again.

In parallel the input volume is patchified 4x4x4 (depthwise ``conv_patch``) and run through the
Disparity Transformer (``atts.cost_vol_disp``): every (x, y) cell becomes a sequence of D/4 disparity
tokens of V channels, with sinusoidal positions; 4 post-norm encoder layers. The result is trilinearly
upsampled x4 and added to the decoder output before two final APCs (``conv_out``).

The transformer itself (:mod:`~skillbank.runtime.networks.common.disparity_attention`) is shared with FFS.
``disparity_attention_layout``:
- ``"tokens"``: standard multi-head attention across the disparity tokens of a cell.
- ``"heads"`` (upstream FoundationStereo since mid-2025, and what FFS bp2 was trained with): q/k/v are
  handed to SDPA as (B, L, heads, head_dim), so SDPA treats the heads as the sequence: each token attends
  over its own 4 heads and disparity tokens never exchange information in the attention step.

Names follow upstream with TAO's conv-block renames (``.bn.`` -> ``.norm.``; ``atts.4`` ->
``atts.cost_vol_disp``), the layout the project's checkpoint loader maps upstream keys onto.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from skillbank.runtime.networks.common.blocks import AxialPlanarConv3d, ConvNormAct, FeatureAtt
from skillbank.runtime.networks.common.conv3d import Conv3d
from skillbank.runtime.networks.common.disparity_attention import CostVolumeDisparityAttention

ATTENTION_LAYOUTS = ("heads", "tokens")


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        ConvNormAct(cin, cout, conv="conv3d", norm="batch3d", kernel_size=3, padding=1, stride=2),
        AxialPlanarConv3d(cout, cout, kernel_size=3, kernel_disp=17),
    )


def _up(cin: int, cout: int) -> ConvNormAct:
    return ConvNormAct(cin, cout, conv="deconv3d", norm="batch3d", kernel_size=4, padding=1, stride=2)


def _agg(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        ConvNormAct(cin, cout, conv="conv3d", norm="batch3d", kernel_size=1, padding=0),
        AxialPlanarConv3d(cout, cout, kernel_size=3, kernel_disp=17),
        AxialPlanarConv3d(cout, cout, kernel_size=3, kernel_disp=17),
    )


class FSHourglass(nn.Module):
    """FoundationStereo's ``cost_agg`` (see the module docstring).

    ``feat_dims``: widths of the image feature pyramid [1/4, 1/8, 1/16, 1/32]. D (= max_disp/4) must be a
    multiple of 8 and H/4, W/4 multiples of 8 (the network pads inputs to 32).
    """

    def __init__(self, volume_dim: int, feat_dims: list[int], max_disp: int, layout: str = "heads",
                 patch_padding: tuple[int, int, int] = (0, 0, 0)) -> None:
        super().__init__()
        v = volume_dim
        self.conv1 = _down(v, 2 * v)
        self.conv2 = _down(2 * v, 4 * v)
        self.conv3 = _down(4 * v, 6 * v)
        self.conv3_up = _up(6 * v, 4 * v)
        self.conv2_up = _up(4 * v, 2 * v)
        self.conv1_up = _up(2 * v, v)
        self.conv_out = nn.Sequential(
            AxialPlanarConv3d(v, v, kernel_size=3, kernel_disp=17),
            AxialPlanarConv3d(v, v, kernel_size=3, kernel_disp=17),
        )
        self.agg_0 = _agg(8 * v, 4 * v)
        self.agg_1 = _agg(4 * v, 2 * v)
        self.atts = nn.ModuleDict({
            "cost_vol_disp": CostVolumeDisparityAttention(
                v, 4, v, num_layers=4, max_len=max_disp // 16, layout=layout
            )
        })
        self.conv_patch = nn.Sequential(
            Conv3d(v, v, kernel_size=4, stride=4, padding=tuple(patch_padding), groups=v),
            nn.BatchNorm3d(v),
        )
        self.feature_att_8 = FeatureAtt(2 * v, feat_dims[1])
        self.feature_att_16 = FeatureAtt(4 * v, feat_dims[2])
        self.feature_att_32 = FeatureAtt(6 * v, feat_dims[3])
        self.feature_att_up_16 = FeatureAtt(4 * v, feat_dims[2])
        self.feature_att_up_8 = FeatureAtt(2 * v, feat_dims[1])

    def forward(self, x: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        conv1 = self.feature_att_8(self.conv1(x), features[1])
        conv2 = self.feature_att_16(self.conv2(conv1), features[2])
        conv3 = self.feature_att_32(self.conv3(conv2), features[3])

        conv2 = self.agg_0(torch.cat((self.conv3_up(conv3), conv2), dim=1))
        conv2 = self.feature_att_up_16(conv2, features[2])
        conv1 = self.agg_1(torch.cat((self.conv2_up(conv2), conv1), dim=1))
        conv1 = self.feature_att_up_8(conv1, features[1])
        conv = self.conv1_up(conv1)

        tokens = self.atts["cost_vol_disp"](self.conv_patch(x))
        conv = conv + F.interpolate(tokens, size=conv.shape[2:], mode="trilinear", align_corners=False)
        return self.conv_out(conv)
