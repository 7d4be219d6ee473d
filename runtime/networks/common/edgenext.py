"""EdgeNeXt-small backbone and the feature pyramid both stereo networks build on it.

EdgeNeXt (Maaz et al., 2022) mixes ConvNeXt-style depthwise blocks with "SDTA" blocks (split
depthwise convs + cross-covariance attention). The small variant has a 4x4/4 stem and four
stages of widths 48/96/160/304 at 1/4..1/32. Names follow TAO's checkpoint layout:
``downsample_layers.{0..3}`` (stem, then LayerNorm + 2x2/2 conv) and ``stages.{i}.{j}``.

:class:`EdgeNeXtPyramid` adds the U-Net decoder (1/32 -> 1/16 -> 1/8 -> 1/4 transposed convs with
skip concatenation): widths ``[96, 192, 320, 304]``. Each network adds its own 1/4 head
(:class:`~skillbank.runtime.networks.ffs.features.FFSFeature`,
:class:`~skillbank.runtime.networks.foundation_stereo.features.FSFeature`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from skillbank.runtime.networks.common.blocks import EdgeNextConvBlock, LayerNormChannelsFirst, UpsampleFuse

EDGENEXT_SMALL_DIMS = (48, 96, 160, 304)
EDGENEXT_SMALL_DEPTHS = (3, 3, 9, 3)
EDGENEXT_SMALL_KERNELS = (3, 5, 7, 9)
EDGENEXT_SMALL_SPLITS = (2, 2, 3, 4)
EDGENEXT_SMALL_SDTA = (0, 1, 1, 1)          # SDTA blocks at the end of each stage
EDGENEXT_SMALL_POS_EMBED = (False, True, False, False)


class FourierPositionalEncoding(nn.Module):
    """2D sine/cosine encoding of normalised (y, x) positions projected by a 1x1 conv."""

    def __init__(self, dim: int, hidden_dim: int = 32, temperature: float = 10000.0) -> None:
        super().__init__()
        self.token_projection = nn.Conv2d(hidden_dim * 2, dim, kernel_size=1)
        self.hidden_dim = hidden_dim
        self.temperature = temperature

    def forward(self, batch: int, height: int, width: int) -> torch.Tensor:
        device = self.token_projection.weight.device
        eps, scale = 1e-6, 2 * math.pi
        y = torch.arange(1, height + 1, dtype=torch.float32, device=device)
        x = torch.arange(1, width + 1, dtype=torch.float32, device=device)
        y = (y / (y[-1:] + eps) * scale).view(1, height, 1, 1).expand(batch, height, width, 1)
        x = (x / (x[-1:] + eps) * scale).view(1, 1, width, 1).expand(batch, height, width, 1)
        dim_t = torch.arange(self.hidden_dim, dtype=torch.float32, device=device)
        dim_t = self.temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / self.hidden_dim)
        pos_x, pos_y = x / dim_t, y / dim_t
        pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
        pos = torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)
        return self.token_projection(pos.to(self.token_projection.weight.dtype))


class CrossCovarianceAttention(nn.Module):
    """XCA: attention between channels (C/h x C/h per head), L2-normalised q/k, learned temperature."""

    def __init__(self, dim: int, num_heads: int = 8) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 4, 1)
        q, k, v = qkv[0], qkv[1], qkv[2]                       # (B, heads, C/h, N)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        x = (attn @ v).permute(0, 3, 1, 2).reshape(b, n, c)
        return self.proj(x)


class SDTABlock(nn.Module):
    """Split depthwise transpose attention block (EdgeNeXt's global block).

    The channels are split in ``splits`` chunks; each of the first ``splits - 1`` chunks (plus the
    previous chunk's output) passes a 3x3 depthwise conv (Res2Net style), the last chunk is kept.
    Then XCA with layer scale, then the LayerNorm + MLP inverted bottleneck with layer scale.
    """

    def __init__(self, dim: int, *, splits: int, use_pos_embed: bool, num_heads: int = 8,
                 expan_ratio: int = 4, layer_scale_init: float = 1e-6) -> None:
        super().__init__()
        self.width = int(math.ceil(dim / splits))
        self.nums = 1 if splits == 1 else splits - 1
        self.convs = nn.ModuleList(
            nn.Conv2d(self.width, self.width, 3, padding=1, groups=self.width) for _ in range(self.nums))
        self.pos_embd = FourierPositionalEncoding(dim) if use_pos_embed else None
        self.norm_xca = nn.LayerNorm(dim, eps=1e-6)
        self.gamma_xca = nn.Parameter(torch.full((dim,), float(layer_scale_init)))
        self.xca = CrossCovarianceAttention(dim, num_heads=num_heads)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, expan_ratio * dim)
        self.pwconv2 = nn.Linear(expan_ratio * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        chunks = torch.split(x, self.width, dim=1)
        outs = []
        sp = chunks[0]
        for i, conv in enumerate(self.convs):
            sp = conv(sp if i == 0 else sp + chunks[i])
            outs.append(sp)
        outs.append(chunks[self.nums])
        x = torch.cat(outs, dim=1)
        b, c, h, w = x.shape
        x = x.reshape(b, c, h * w).permute(0, 2, 1)            # (B, N, C)
        if self.pos_embd is not None:
            x = x + self.pos_embd(b, h, w).reshape(b, c, h * w).permute(0, 2, 1)
        x = x + self.gamma_xca * self.xca(self.norm_xca(x))
        x = x.reshape(b, h, w, c)
        x = self.gamma * self.pwconv2(F.gelu(self.pwconv1(self.norm(x))))
        return shortcut + x.permute(0, 3, 1, 2)


class EdgeNeXtSmall(nn.Module):
    """EdgeNeXt-small feature extractor returning the four stage outputs (1/4, 1/8, 1/16, 1/32)."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        dims = EDGENEXT_SMALL_DIMS
        self.dims = dims
        self.downsample_layers = nn.ModuleList([nn.Sequential(
            nn.Conv2d(in_channels, dims[0], kernel_size=4, stride=4),
            LayerNormChannelsFirst(dims[0], eps=1e-6))])
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                LayerNormChannelsFirst(dims[i], eps=1e-6),
                nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2)))
        self.stages = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(dims, EDGENEXT_SMALL_DEPTHS, strict=True)):
            n_conv = depth - EDGENEXT_SMALL_SDTA[i]
            blocks: list[nn.Module] = [
                EdgeNextConvBlock(dim, kernel_size=EDGENEXT_SMALL_KERNELS[i]) for _ in range(n_conv)]
            blocks += [SDTABlock(dim, splits=EDGENEXT_SMALL_SPLITS[i], use_pos_embed=EDGENEXT_SMALL_POS_EMBED[i])
                       for _ in range(EDGENEXT_SMALL_SDTA[i])]
            self.stages.append(nn.Sequential(*blocks))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return run_stages(self.downsample_layers, self.stages, x)


def run_stages(downsample_layers: nn.ModuleList, stages: nn.ModuleList, x: torch.Tensor) -> list[torch.Tensor]:
    """The four EdgeNeXt stage outputs (1/4, 1/8, 1/16, 1/32) of ``x``."""
    feats = []
    for down, stage in zip(downsample_layers, stages, strict=True):
        x = stage(down(x))
        feats.append(x)
    return feats


class EdgeNeXtPyramid(nn.Module):
    """EdgeNeXt-small encoder + the transposed-conv decoder shared by FFS and FoundationStereo.

    :meth:`pyramid` returns ``[x4, x8, x16, x32]`` with widths ``[96, 192, 320, 304]``; each network
    adds its own 1/4 head (``conv4``). The decoder blocks use InstanceNorm (no affine) and LeakyReLU /
    ReLU as in TAO. Module names (``downsample_layers``, ``stages``, ``deconv*``) are TAO's.
    """

    def __init__(self) -> None:
        super().__init__()
        backbone = EdgeNeXtSmall()
        self.downsample_layers = backbone.downsample_layers
        self.stages = backbone.stages
        c = EDGENEXT_SMALL_DIMS
        self.deconv32_16 = UpsampleFuse(c[3], c[2], c[2], norm="instance2d", fuse="residual")
        self.deconv16_8 = UpsampleFuse(c[2] * 2, c[1], c[1], norm="instance2d", fuse="residual")
        self.deconv8_4 = UpsampleFuse(c[1] * 2, c[0], c[0], norm="instance2d", fuse="residual")

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        x4, x8, x16, x32 = run_stages(self.downsample_layers, self.stages, x)
        x16 = self.deconv32_16(x32, x16)
        x8 = self.deconv16_8(x16, x8)
        x4 = self.deconv8_4(x8, x4)
        return [x4, x8, x16, x32]

