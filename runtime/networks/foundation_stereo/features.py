"""FoundationStereo feature extractors: side-tuned EdgeNeXt + frozen DepthAnythingV2, and the context net.

:class:`FSFeature` (``feature``), run on left and right stacked in the batch:
1. ViT branch (frozen, no grad, eval mode): the image is resized (bicubic) to the next multiple of 112
   (= lcm(14 patch, 16); longest side capped at 1344), DepthAnythingV2 gives its DPT features
   (``features/2`` channels: 32 vits, 64 vitb, 128 vitl) at that size, bilinearly resized to 1/4.
2. CNN branch (trainable): EdgeNeXt-small stages 48/96/160/304 at 1/4..1/32, decoder of transposed convs
   1/32 -> 1/16 -> 1/8 -> 1/4 with skip concatenation and InstanceNorm residual blocks.
3. Fusion at 1/4: concat [CNN 96, ViT] -> 3x3 ConvNormAct (InstanceNorm) + two RAFT residual blocks.
   Pyramid widths ``d_out = [96 + vit, 192, 320, 304]``.

:class:`ContextNetDino` (``cnet``), left image only: a RAFT ResNet encoder to 1/4 (``n_downsample`` 2),
concat the ViT feature, a 3x3 ConvNormAct to 128; then per GRU level (1/4, 1/8, 1/16) two heads, one for
the GRU hidden state (tanh applied by the caller) and one for the GRU input (relu applied by the caller).

Module names follow upstream FoundationStereo (``feature.deconv32_16``, ``feature.conv4``,
``feature.dino.depth_anything.pretrained``, ``cnet.layer1`` ...), with TAO's layout for the EdgeNeXt
(``downsample_layers``/``stages``) and conv blocks (``.norm.``), which the checkpoint loader maps onto.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from skillbank.runtime.networks.common.blocks import ConvNormAct, InstanceNorm2d
from skillbank.runtime.networks.common.edgenext import EDGENEXT_SMALL_DIMS, EdgeNeXtPyramid
from skillbank.runtime.networks.depth_anything.dpt import DPT_CONFIGS
from skillbank.runtime.networks.depth_anything.model import DepthAnythingV2

VIT_DIVISOR = 112  # lcm(14, 16): ViT patch and the CNN's strides
VIT_MAX_SIDE = 1344
FS_ENCODERS = ("vits", "vitb", "vitl")


def vit_input_size(height: int, width: int, divisor: int = VIT_DIVISOR, max_side: int = VIT_MAX_SIDE):
    """Size the ViT branch runs at: each side rounded up to ``divisor``; if a side exceeds ``max_side``
    the longer side is set to it and the other scaled to keep the aspect ratio (upstream's rule)."""

    def up(x: float) -> int:
        return int(math.ceil(x / divisor) * divisor)

    h, w = up(height), up(width)
    if h > max_side or w > max_side:
        if h > w:
            h, w = max_side, up(w * max_side / h)
        else:
            h, w = up(h * max_side / w), max_side
    return h, w


def vit_feature_dim(encoder: str) -> int:
    """Channels of the DepthAnythingV2 feature FoundationStereo fuses (DPT features / 2)."""
    if encoder not in FS_ENCODERS:
        raise ValueError(f"FoundationStereo: encoder {encoder!r} is not one of {FS_ENCODERS}")
    return DPT_CONFIGS[encoder]["features"] // 2


class RaftResidualBlock(nn.Module):
    """RAFT's residual block: conv-norm-ReLU twice (biased convs), 1x1 projection shortcut when needed."""

    def __init__(self, cin: int, cout: int, norm_fn: str = "batch", stride: int = 1) -> None:
        super().__init__()
        norms = {"batch": nn.BatchNorm2d, "instance": InstanceNorm2d}
        if norm_fn not in norms:
            raise ValueError(f"RaftResidualBlock: norm_fn {norm_fn!r} is not one of {sorted(norms)}")
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm1 = norms[norm_fn](cout)
        self.norm2 = norms[norm_fn](cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.norm3 = norms[norm_fn](cout)
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride), self.norm3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return F.relu(x + y)


class DepthAnythingFeature(nn.Module):
    """Holder giving upstream's ``feature.dino.depth_anything.*`` key path to the frozen DepthAnythingV2."""

    def __init__(self, encoder: str, use_bn: bool = False, use_clstoken: bool = False) -> None:
        super().__init__()
        self.depth_anything = DepthAnythingV2.from_encoder(
            encoder, metric=False, use_bn=use_bn, use_clstoken=use_clstoken
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.depth_anything.forward_features(x)


class FSFeature(EdgeNeXtPyramid):
    """Stereo feature pyramid with the frozen ViT side branch (see the module docstring)."""

    def __init__(self, encoder: str, use_bn: bool = False, use_clstoken: bool = False) -> None:
        super().__init__()
        vit_dim = vit_feature_dim(encoder)
        c = EDGENEXT_SMALL_DIMS
        fused = c[0] * 2 + vit_dim
        self.conv4 = nn.Sequential(
            ConvNormAct(fused, fused, conv="conv2d", norm="instance2d", kernel_size=3, padding=1),
            RaftResidualBlock(fused, fused, "instance"),
            RaftResidualBlock(fused, fused, "instance"),
        )
        self.dino = DepthAnythingFeature(encoder, use_bn, use_clstoken)
        for p in self.dino.parameters():
            p.requires_grad_(False)
        self.vit_dim = vit_dim
        self.d_out = [fused, c[1] * 2, c[2] * 2, c[3]]

    def train(self, mode: bool = True) -> FSFeature:
        """Train the CNN; the ViT branch always stays in eval mode (frozen, like its BatchNorms)."""
        super().train(mode)
        self.dino.eval()
        return self

    def vit_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, vit_dim, H/4, W/4) frozen DepthAnythingV2 features of the (padded) image batch."""
        h, w = x.shape[-2:]
        size = vit_input_size(h, w)
        x_vit = F.interpolate(x, size=size, mode="bicubic", align_corners=False)
        with torch.no_grad():
            feat = self.dino(x_vit)
        return F.interpolate(feat, size=(h // 4, w // 4), mode="bilinear", align_corners=True)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Returns the pyramid [x4, x8, x16, x32] and the 1/4-res ViT feature."""
        vit_feat = self.vit_features(x)
        x4, x8, x16, x32 = self.pyramid(x)
        x4 = self.conv4(torch.cat((x4, vit_feat), dim=1))
        return [x4, x8, x16, x32], vit_feat


class ContextNetDino(nn.Module):
    """RAFT-style context encoder fused with the ViT feature (see the module docstring).

    ``hidden_widths`` / ``context_widths``: per GRU level (1/4, 1/8, 1/16) widths of the two heads.
    Unused upstream modules (``down``, ``norm``; heads of levels beyond ``n_gru_layers`` are still built
    for all three levels) are kept so upstream checkpoints load strictly.
    """

    def __init__(self, vit_dim: int, hidden_widths: list[int], context_widths: list[int],
                 n_downsample: int = 2) -> None:
        super().__init__()
        if n_downsample != 2:
            raise ValueError(f"FoundationStereo: n_downsample must be 2 (1/4 resolution), got {n_downsample}")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=1 + (n_downsample > 2), padding=3)
        self.norm1 = nn.BatchNorm2d(64)
        self.layer1 = self._layer(64, 64, 1)
        self.layer2 = self._layer(64, 96, 1 + (n_downsample > 1))
        self.layer3 = self._layer(96, 128, 1 + (n_downsample > 0))
        self.layer4 = self._layer(128, 128, 2)
        self.layer5 = self._layer(128, 128, 2)
        self.down = nn.Sequential(nn.Conv2d(128, 128, 4, stride=4), nn.BatchNorm2d(128))
        self.conv2 = ConvNormAct(128 + vit_dim, 128, conv="conv2d", norm="batch2d", kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(256)
        widths = [hidden_widths, context_widths]
        self.outputs04 = nn.ModuleList(
            nn.Sequential(RaftResidualBlock(128, 128), nn.Conv2d(128, w[0], 3, padding=1)) for w in widths
        )
        self.outputs08 = nn.ModuleList(
            nn.Sequential(RaftResidualBlock(128, 128), nn.Conv2d(128, w[1], 3, padding=1)) for w in widths
        )
        self.outputs16 = nn.ModuleList(nn.Conv2d(128, w[2], 3, padding=1) for w in widths)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def _layer(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(RaftResidualBlock(cin, cout, stride=stride), RaftResidualBlock(cout, cout))

    def forward(self, image: torch.Tensor, vit_feat: torch.Tensor, num_layers: int = 3) -> list:
        """[(hidden, context) at 1/4, at 1/8, at 1/16][:num_layers], before tanh / relu."""
        x = F.relu(self.norm1(self.conv1(image)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.conv2(torch.cat((x, vit_feat), dim=1))
        out = [tuple(head(x) for head in self.outputs04)]
        if num_layers > 1:
            y = self.layer4(x)
            out.append(tuple(head(y) for head in self.outputs08))
            if num_layers > 2:
                z = self.layer5(y)
                out.append(tuple(head(z) for head in self.outputs16))
        return out

