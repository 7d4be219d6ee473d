"""The layers of the refinement update, shared by both stereo networks.

:class:`MotionEncoder` (lookup features and disparity -> motion features), :class:`SelectiveConvGRU`
(a 1x1 and a 3x3 :class:`RaftConvGRU` on shared gating features, blended by a spatial attention map),
:class:`DispHead` (the disparity delta), and the context attentions :class:`ChannelAttention` and
:class:`SpatialAttention`. FastFoundationStereo's update block (one GRU level:
:mod:`~skillbank.runtime.networks.ffs.update`) and FoundationStereo's (up to three:
:mod:`~skillbank.runtime.networks.foundation_stereo.update`) are built from them.

The weighted layers are applied through an ``ops`` argument
(:class:`~skillbank.runtime.networks.speed.layer_ops.LayerOps`, default
:data:`~skillbank.runtime.networks.speed.layer_ops.PLAIN`: exactly what calling the modules
computes): FFS training passes tapped ops that defer the weight gradients (networks/README.md,
"Changing a layer").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from skillbank.runtime.networks.common.blocks import EdgeNextConvBlock
from skillbank.runtime.networks.speed.grad_layout import grad_in_layout, memory_format_of
from skillbank.runtime.networks.speed.layer_ops import PLAIN, LayerOps


class ChannelAttention(nn.Module):
    """Channel attention from avg- and max-pooled descriptors (selective-IGEV): (B, C, 1, 1) in 0..1."""

    def __init__(self, channels: int, mid_channels: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Conv2d(channels, mid_channels, 1, bias=False), nn.ReLU(),
            nn.Conv2d(mid_channels, channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.fc(x.mean(dim=(2, 3), keepdim=True))
        # max pooling (upstream's AdaptiveMaxPool2d; argmax-routed gradient), not amax: amax's backward
        # divides by the count of elements equal to the saved max, and Inductor counts against an
        # unrounded fp32 recomputation of a bf16 ``x``: count 0, NaN gradients (also in SpatialAttention)
        mx = self.fc(F.adaptive_max_pool2d(x, 1))
        return torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """Spatial attention map (B, 1, H, W) in 0..1 from the channel mean and max, 7x7 conv."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.samconv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.max(dim=1, keepdim=True).values], dim=1)
        return torch.sigmoid(self.samconv(pooled))


class MotionEncoder(nn.Module):
    """Encode the lookup features and the current disparity; the raw disparity is appended."""

    def __init__(self, lookup_channels: int, widths: list[int], out_channels: int) -> None:
        super().__init__()
        c1, c2, d1, d2 = widths
        self.convc1 = nn.Conv2d(lookup_channels, c1, 1)
        self.convc2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.convd1 = nn.Conv2d(1, d1, 7, padding=3)
        self.convd2 = nn.Conv2d(d1, d2, 3, padding=1)
        self.conv = nn.Conv2d(c2 + d2, out_channels, 3, padding=1)

    def forward(self, disp: torch.Tensor, corr: torch.Tensor, ops: LayerOps = PLAIN) -> torch.Tensor:
        cor = F.relu(ops.conv(F.relu(ops.conv(corr, [self.convc1])), [self.convc2]))
        extra = self.convd1.in_channels - disp.shape[1]     # zero channels of a channel-padded network
        joined = _joining(disp, cor)        # cor and out compute in the same dtype: converted once
        dis = F.pad(joined, (0, 0, 0, 0, 0, extra)) if extra else joined
        dis = F.relu(ops.conv(F.relu(ops.conv(dis, [self.convd1])), [self.convd2]))
        out = F.relu(ops.conv(torch.cat([cor, dis], dim=1), [self.conv]))
        return torch.cat([out, joined], dim=1)


def _joining(disp: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The (B, 1, H, W) disparity in ``like``'s dtype (the dtype the convolutions compute in, which
    autocast would cast it to anyway: the same values) with channels_last strides (a one-channel
    tensor's NCHW strides make ``cat`` and ``pad`` return NCHW). Padded or concatenated to ``like``, it
    then gives the convolution's input in the dtype and memory format the convolution reads, instead
    of an fp32 NCHW tensor besides (written by the fused kernel in a strided order, and what the
    deferred weight gradients would record, concatenate and cast)."""
    return disp.to(dtype=like.dtype, memory_format=torch.channels_last)


class RaftConvGRU(nn.Module):
    """ConvGRU whose z/r gates read a precomputed ``hx`` and whose candidate reads cat(r*h, x)."""

    def __init__(self, hidden: int, hx_channels: int, q_channels: int, kernel_size: int) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.convz = nn.Conv2d(hx_channels, hidden, kernel_size, padding=pad)
        self.convr = nn.Conv2d(hx_channels, hidden, kernel_size, padding=pad)
        self.convq = nn.Conv2d(q_channels, hidden, kernel_size, padding=pad)

    @property
    def gates(self) -> list[nn.Conv2d]:
        """The z and r gates: they read the same input, applied as one convolution with both filter banks."""
        return [self.convz, self.convr]

    def forward(self, h: torch.Tensor, x: torch.Tensor, hx: torch.Tensor, ops: LayerOps = PLAIN) -> torch.Tensor:
        z, r = torch.sigmoid(ops.conv(hx, self.gates)).split(self.convz.out_channels, dim=1)
        q = torch.tanh(ops.conv(torch.cat([r * h, x], dim=1), [self.convq]))
        return torch.lerp(h, q, z)                     # (1 - z) * h + z * q in one kernel


class SelectiveConvGRU(nn.Module):
    """Two GRUs (1x1 and 3x3 kernels) on shared gating features, blended by an attention map."""

    def __init__(self, hidden: int, input_channels: int, gating_widths: list[int]) -> None:
        super().__init__()
        g0, g1 = gating_widths
        self.conv0 = nn.Sequential(nn.Conv2d(input_channels, g0, 3, padding=1), nn.ReLU())
        self.conv1 = nn.Sequential(nn.Conv2d(g0 + hidden, g1, 3, padding=1), nn.ReLU())
        self.small_gru = RaftConvGRU(hidden, g1, g0 + hidden, 1)
        self.large_gru = RaftConvGRU(hidden, g1, g0 + hidden, 3)

    def forward(self, att: torch.Tensor, h: torch.Tensor, x: torch.Tensor, ops: LayerOps = PLAIN,
                context: torch.Tensor | None = None) -> torch.Tensor:
        """``context``: :meth:`context_share` of the input's leading channels, computed once for all
        iterations; ``x`` then holds only the rest of the input."""
        conv0 = self.conv0[0]
        if context is None:
            x = F.relu(ops.conv(x, [conv0]))
        else:
            x = F.relu(ops.conv(x, [conv0], skip=conv0.in_channels - x.shape[1]) + context)
        hx = F.relu(ops.conv(torch.cat([x, h], dim=1), [self.conv1[0]]))
        # att * small + (1 - att) * large (their gates are not fused across the two GRUs: a 1x1
        # kernel zero-padded to 3x3 would cost 9 times its multiply-adds, ~20 % of the iteration's)
        return torch.lerp(self.large_gru(h, x, hx, ops), self.small_gru(h, x, hx, ops), att)

    def context_share(self, context: torch.Tensor) -> torch.Tensor:
        """``conv0``'s output share of an input whose leading channels are ``context`` (no bias): the
        convolution is linear in its input channels, so an input part that is the same in every
        iteration (the context features) is convolved once per forward instead of once per iteration."""
        conv0 = self.conv0[0]
        weight = conv0.weight[:, :context.shape[1]]
        return F.conv2d(context, weight, None, conv0.stride, conv0.padding, conv0.dilation, conv0.groups)


class DispHead(nn.Module):
    """Disparity delta head: 3x3 conv, ReLU, two norm-free EdgeNeXt blocks, 3x3 conv to 1 channel."""

    def __init__(self, input_dim: int, hidden: int, pwconv1_widths: list[int]) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(input_dim, hidden, 3, padding=1), nn.ReLU(),
            EdgeNextConvBlock(hidden, kernel_size=7, hidden=pwconv1_widths[0], norm=False),
            EdgeNextConvBlock(hidden, kernel_size=7, hidden=pwconv1_widths[1], norm=False),
            nn.Conv2d(hidden, 1, 3, padding=1))

    def forward(self, x: torch.Tensor, ops: LayerOps = PLAIN) -> torch.Tensor:
        y = F.relu(ops.conv(x, [self.conv[0]]))
        y = self.conv[3](self.conv[2](y, ops), ops)
        # a channel-padded head computes zero extra outputs; the gradient of all of them in the
        # input's layout (the selection's backward would make an NCHW one that cuDNN copies)
        return grad_in_layout(ops.conv(y, [self.conv[4]]), memory_format_of(y))[:, :1]
