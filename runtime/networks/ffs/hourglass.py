"""FFS stage 3, filtering: the searched 3D hourglass with its one-layer disparity transformer.

Shapes use ``c = volume_dim`` (28 for bp2) and a (B, c, D, H/4, W/4) input volume.

Encoder (names are TAO's, kept for checkpoint compatibility):
  ``feature_att_8``  c -> c (3x3x3 stride 2), APC c -> 2c (disparity kernel 17), image gate (1/8)
  ``feature_att_16`` 2c -> 4c (stride 2), APC 4c -> 2c (k 13), APC 2c -> 4c (k 3)
  ``conv3``          4c -> 6c (stride 2), APC 6c (k 17); ``feature_att_32`` image gate (1/32)
Decoder (each ``post*`` upsamples the coarse volume, adds the skip, then refines):
  ``post32_to_16``  deconv 6c -> 4c, + skip, gate (1/16), conv, APC (k 9), conv
  ``post16_to_8``   deconv 4c -> 2c, + skip, conv, gate (1/8), APC (k 9)
  ``conv1_up``      deconv 2c -> c (back to 1/4)
  ``post8_to_4``    the disparity transformer branch: 4x4x4 stride-4 conv (BN, no activation),
                    1 post-norm transformer layer along disparity (4 heads, ff 4c, sinusoidal
                    positions up to max_disparity/16), trilinear x4 upsampling; added to the
                    hourglass *input*; then conv + 3D residual block. The transformer is
                    :mod:`~skillbank.runtime.networks.common.disparity_attention` (shared with
                    FoundationStereo).
"""

from __future__ import annotations

import torch
from torch import nn

from skillbank.runtime.networks.common.blocks import (
    AxialPlanarConv3d,
    ConvNormAct,
    FeatureAtt,
    ResidualBlock,
    TrilinearUpsample,
)
from skillbank.runtime.networks.common.disparity_attention import AttentionLayout, CostVolumeDisparityAttention
from skillbank.runtime.networks.speed.grad_layout import memory_format_of


class GatedStage(nn.Module):
    """A sequence of 3D blocks in which :class:`FeatureAtt` members also take the image feature."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, feat) if isinstance(layer, FeatureAtt) else layer(x)
        return x


class UpsampleMerge(nn.Module):
    """``out(upsample(coarse) + skip)``, where gates in ``out`` also take the image feature."""

    def __init__(self, upsample: list[nn.Module], out: list[nn.Module]) -> None:
        super().__init__()
        self.upsample = nn.Sequential(*upsample)
        self.out = nn.ModuleList(out)

    def forward(self, skip: torch.Tensor, coarse: torch.Tensor, feat: torch.Tensor | None = None) -> torch.Tensor:
        # in the skip's layout (the sum would take the transposed convolution's: NCDHW on the GPU)
        x = (self.upsample(coarse) + skip).contiguous(memory_format=memory_format_of(skip))
        for layer in self.out:
            x = layer(x, feat) if isinstance(layer, FeatureAtt) else layer(x)
        return x


def _conv3d(cin: int, cout: int, **kw) -> ConvNormAct:
    kw.setdefault("kernel_size", 3)
    kw.setdefault("padding", 1)
    return ConvNormAct(cin, cout, conv="conv3d", norm="batch3d", **kw)


def _deconv3d(cin: int, cout: int, **kw) -> ConvNormAct:
    return ConvNormAct(cin, cout, conv="deconv3d", norm="batch3d", **kw)


class FFSHourGlass(nn.Module):
    """The searched (bp2) hourglass with its disparity transformer; see the module docstring.

    Args:
        channels: volume width ``c`` (``volume_dim``); divisible by the 4 attention heads.
        feat_dims: image pyramid widths at 1/4, 1/8, 1/16, 1/32.
        max_disparity: full-resolution disparity range; the volume has ``max_disparity // 4``
            levels and the transformer ``max_disparity // 16`` tokens.
        layout: disparity-attention head layout (``"heads"`` for bp2 weights).
    """

    def __init__(self, channels: int, feat_dims: list[int], max_disparity: int,
                 layout: AttentionLayout = "heads") -> None:
        super().__init__()
        c = channels
        self.feature_att_8 = GatedStage([
            _conv3d(c, c, stride=2),
            AxialPlanarConv3d(c, c * 2, kernel_disp=17),
            FeatureAtt(c * 2, feat_dims[1])])
        self.feature_att_16 = GatedStage([
            _conv3d(c * 2, c * 4, stride=2),
            AxialPlanarConv3d(c * 4, c * 2, kernel_disp=13),
            AxialPlanarConv3d(c * 2, c * 4, kernel_disp=3)])
        self.conv3 = nn.Sequential(_conv3d(c * 4, c * 6, stride=2), AxialPlanarConv3d(c * 6, c * 6, kernel_disp=17))
        self.feature_att_32 = FeatureAtt(c * 6, feat_dims[3])
        self.post32_to_16 = UpsampleMerge(
            [_deconv3d(c * 6, c * 4, kernel_size=3, padding=1, stride=2, output_padding=1)],
            [FeatureAtt(c * 4, feat_dims[2]), _conv3d(c * 4, c * 4),
             AxialPlanarConv3d(c * 4, c * 4, kernel_disp=9), _conv3d(c * 4, c * 4)])
        self.post16_to_8 = UpsampleMerge(
            [_deconv3d(c * 4, c * 2, kernel_size=4, padding=1, stride=2)],
            [_conv3d(c * 2, c * 2), FeatureAtt(c * 2, feat_dims[1]),
             AxialPlanarConv3d(c * 2, c * 2, kernel_disp=9)])
        self.conv1_up = _deconv3d(c * 2, c, kernel_size=4, padding=1, stride=2)
        self.post8_to_4 = UpsampleMerge(
            [_conv3d(c, c, kernel_size=4, padding=0, stride=4, act=False),
             CostVolumeDisparityAttention(c, 4, c * 4, num_layers=1, max_len=max_disparity // 16, layout=layout),
             TrilinearUpsample(4)],
            [_conv3d(c, c), ResidualBlock(c, c, dims=3, norm="batch3d")])

    def forward(self, x: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        conv1 = self.feature_att_8(x, features[1])
        conv2 = self.feature_att_16(conv1, features[2])
        conv3 = self.feature_att_32(self.conv3(conv2), features[3])
        conv2 = self.post32_to_16(conv2, conv3, features[2])
        conv1 = self.post16_to_8(conv1, conv2, features[1])
        return self.post8_to_4(x, self.conv1_up(conv1))
