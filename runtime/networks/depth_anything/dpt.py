"""DPT head of DepthAnythingV2: four ViT token maps -> a dense one-channel map at input resolution.

Data flow (patch grid h x w = H/14 x W/14, ``features`` F):
1. Readout: optionally concat the class token to every patch token and project back (``use_clstoken``).
2. ``projects[i]`` (1x1 conv to ``out_channels[i]``) and ``resize_layers[i]`` put the four taps on a
   pyramid: x4 (transposed conv), x2 (transposed conv), x1, x1/2 (stride-2 conv).
3. ``scratch.layer{1..4}_rn``: 3x3 convs to F channels.
4. ``scratch.refinenet4 .. refinenet1``: fusion blocks, coarse to fine; each adds the (residual-conv'd)
   skip, runs a residual conv unit, upsamples to the next finer size (x2 for the last) and 1x1-convs.
5. ``scratch.output_conv1`` (F -> F/2) at 2h x 2w, bilinear resize to 14h x 14w (the image size),
   ``scratch.output_conv2``: 3x3 conv -> 32, ReLU, 1x1 conv -> 1, then Sigmoid (metric) or ReLU
   (relative).

Names follow upstream ``depth_head.*`` exactly so checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Upstream head sizes per encoder: features F and the channels of the four projected taps.
DPT_CONFIGS: dict[str, dict] = {
    "vits": {"features": 64, "out_channels": [48, 96, 192, 384]},
    "vitb": {"features": 128, "out_channels": [96, 192, 384, 768]},
    "vitl": {"features": 256, "out_channels": [256, 512, 1024, 1024]},
    "vitg": {"features": 384, "out_channels": [1536, 1536, 1536, 1536]},
}


class ResidualConvUnit(nn.Module):
    """x + conv2(act(bn2?(conv1(act(x))))) with optional BatchNorm after each conv."""

    def __init__(self, features: int, use_bn: bool) -> None:
        super().__init__()
        self.use_bn = use_bn
        self.conv1 = nn.Conv2d(features, features, 3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1, bias=True)
        if use_bn:
            self.bn1 = nn.BatchNorm2d(features)
            self.bn2 = nn.BatchNorm2d(features)
        self.activation = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.activation(x))
        if self.use_bn:
            out = self.bn1(out)
        out = self.conv2(self.activation(out))
        if self.use_bn:
            out = self.bn2(out)
        return out + x


class FeatureFusionBlock(nn.Module):
    """Fuse a coarser path with a skip: (path + rcu1(skip)) -> rcu2 -> resize -> 1x1 ``out_conv``."""

    def __init__(self, features: int, use_bn: bool) -> None:
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(features, use_bn)
        self.resConfUnit2 = ResidualConvUnit(features, use_bn)
        self.out_conv = nn.Conv2d(features, features, 1, bias=True)

    def forward(
        self, x: torch.Tensor, skip: torch.Tensor | None = None, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class DPTHead(nn.Module):
    """Dense prediction head over four ViT layers (see the module docstring for the data flow).

    ``final_activation``: "sigmoid" (metric depth in (0,1), scaled outside) or "relu" (relative inverse
    depth). ``forward_features`` stops before ``output_conv2`` and returns the F/2-channel map at image
    resolution: FoundationStereo fuses that map into its stereo features.
    """

    def __init__(
        self,
        in_channels: int,
        features: int = 256,
        use_bn: bool = False,
        out_channels: list[int] | tuple[int, ...] = (256, 512, 1024, 1024),
        use_clstoken: bool = False,
        final_activation: str = "relu",
    ) -> None:
        super().__init__()
        if final_activation not in ("relu", "sigmoid"):
            raise ValueError(f"DPTHead: final_activation {final_activation!r} is not 'relu' or 'sigmoid'")
        self.use_clstoken = use_clstoken
        self.projects = nn.ModuleList(nn.Conv2d(in_channels, c, 1) for c in out_channels)
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(out_channels[0], out_channels[0], kernel_size=4, stride=4),
                nn.ConvTranspose2d(out_channels[1], out_channels[1], kernel_size=2, stride=2),
                nn.Identity(),
                nn.Conv2d(out_channels[3], out_channels[3], kernel_size=3, stride=2, padding=1),
            ]
        )
        if use_clstoken:
            self.readout_projects = nn.ModuleList(
                nn.Sequential(nn.Linear(2 * in_channels, in_channels), nn.GELU()) for _ in out_channels
            )
        scratch = nn.Module()
        for i, c in enumerate(out_channels, start=1):
            setattr(scratch, f"layer{i}_rn", nn.Conv2d(c, features, 3, padding=1, bias=False))
        for i in range(1, 5):
            setattr(scratch, f"refinenet{i}", FeatureFusionBlock(features, use_bn))
        scratch.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        scratch.output_conv2 = nn.Sequential(
            nn.Conv2d(features // 2, 32, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(32, 1, 1),
            nn.Sigmoid() if final_activation == "sigmoid" else nn.ReLU(True),
        )
        self.scratch = scratch

    def forward_features(self, layers: tuple, patch_h: int, patch_w: int) -> torch.Tensor:
        """(B, F/2, 14*patch_h, 14*patch_w) features before the output convs.

        ``layers``: four ``(tokens (B,N,C), cls (B,C))`` pairs from ``get_intermediate_layers``.
        """
        pyramid = []
        for i, (tokens, cls_token) in enumerate(layers):
            if self.use_clstoken:
                readout = cls_token.unsqueeze(1).expand_as(tokens)
                tokens = self.readout_projects[i](torch.cat((tokens, readout), dim=-1))
            x = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[-1], patch_h, patch_w)
            pyramid.append(self.resize_layers[i](self.projects[i](x)))
        s = self.scratch
        l1, l2, l3, l4 = (getattr(s, f"layer{i}_rn")(p) for i, p in enumerate(pyramid, start=1))
        path = s.refinenet4(l4, size=l3.shape[2:])
        path = s.refinenet3(path, l3, size=l2.shape[2:])
        path = s.refinenet2(path, l2, size=l1.shape[2:])
        path = s.refinenet1(path, l1)
        out = s.output_conv1(path)
        return F.interpolate(out, (patch_h * 14, patch_w * 14), mode="bilinear", align_corners=True)

    def forward(self, layers: tuple, patch_h: int, patch_w: int) -> torch.Tensor:
        """(B, 1, 14*patch_h, 14*patch_w): sigmoid in (0,1) or ReLU >= 0."""
        return self.scratch.output_conv2(self.forward_features(layers, patch_h, patch_w))
