"""Shared convolution, normalisation and attention blocks for the stereo networks.

Every block takes its widths as arguments so FoundationStereo and FastFoundationStereo can
build on the same pieces. Attribute names (``conv``, ``norm``, ``bn1``, ``feat_att``, ...) are
the ones TAO's depth_net checkpoints use, so ``load_state_dict`` matches them directly.

Activation conventions (they matter for checkpoint fidelity):
- :class:`ConvNormAct` ("BasicConv" upstream) ends in LeakyReLU(0.01), not ReLU.
- :class:`AxialPlanarConv3d` and :class:`ResidualBlock` use plain ReLU.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from skillbank.runtime.networks.common.conv3d import Conv3d
from skillbank.runtime.networks.speed.grad_layout import grad_in_layout, memory_format_of
from skillbank.runtime.networks.speed.layer_ops import PLAIN, LayerOps

ConvKind = Literal["conv2d", "conv3d", "deconv2d", "deconv3d"]
NormKind = Literal["batch2d", "batch3d", "instance2d", "instance3d"]

_CONVS: dict[str, type[nn.Module]] = {
    "conv2d": nn.Conv2d, "conv3d": Conv3d,
    "deconv2d": nn.ConvTranspose2d, "deconv3d": nn.ConvTranspose3d,
}
LEAKY_SLOPE = 0.01


class _LayoutKeepingInstanceNorm:
    """InstanceNorm whose output keeps a channels_last input's layout.

    ``F.instance_norm`` normalises a (1, B * C, ...) view of its input, which it first makes
    NCHW-contiguous: a channels_last network's feature decoder then hands NCHW tensors to its next
    convolution, and to that convolution's backward together with an NCHW gradient, which cuDNN
    copies back to channels_last (``benchmarks/conv_layouts.py``; ~0.3 ms of a compiled FFS
    training step on an H100). For a channels_last (or channels_last_3d) input without running
    statistics on a GPU, this computes the same normalisation as reductions over the spatial axes (in
    fp32 at least), which keep the layout (:meth:`normalise_in_layout`; it rounds differently from
    ``F.instance_norm``, ~1e-7 relative in fp32). Any other input runs ``F.instance_norm``: NCHW (as
    the ONNX export traces), and every CPU input, whose results thus stay bit-identical to
    ``nn.InstanceNorm*``'s (a tiny random FFS amplifies even that rounding: ``test_ffs_golden.py``),
    unless ``on_cpu`` (``benchmarks/conv_layouts.py`` traces the GPU's layouts on the CPU).
    Parameters, buffers and ``state_dict`` keys are ``nn.InstanceNorm*``'s.
    """

    #: CPU inputs take the layout-keeping path too
    on_cpu: ClassVar[bool] = False

    eps: float
    affine: bool
    track_running_stats: bool
    weight: torch.Tensor | None
    bias: torch.Tensor | None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plain = self.track_running_stats or (x.device.type == "cpu" and not self.on_cpu)
        if plain or memory_format_of(x) is torch.contiguous_format:
            return super().forward(x)  # type: ignore[misc]
        return self.normalise_in_layout(x)

    def normalise_in_layout(self, x: torch.Tensor) -> torch.Tensor:
        """The instance normalisation of ``x`` (no running statistics) as reductions over its spatial
        axes: the output keeps ``x``'s memory layout."""
        dims = tuple(range(2, x.dim()))
        xf = x.to(torch.promote_types(x.dtype, torch.float32))
        var, mean = torch.var_mean(xf, dim=dims, unbiased=False, keepdim=True)
        y = (xf - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            shape = (1, -1) + (1,) * len(dims)
            y = y * self.weight.view(shape) + self.bias.view(shape)  # type: ignore[union-attr]
        return y.to(x.dtype)


class InstanceNorm2d(_LayoutKeepingInstanceNorm, nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` that keeps a channels_last input's layout (:class:`_LayoutKeepingInstanceNorm`)."""


class InstanceNorm3d(_LayoutKeepingInstanceNorm, nn.InstanceNorm3d):
    """``nn.InstanceNorm3d`` that keeps a channels_last_3d input's layout (:class:`_LayoutKeepingInstanceNorm`)."""


_NORMS: dict[str, type[nn.Module]] = {
    "batch2d": nn.BatchNorm2d, "batch3d": nn.BatchNorm3d,
    "instance2d": InstanceNorm2d, "instance3d": InstanceNorm3d,
}


def make_norm(kind: str | None, channels: int) -> nn.Module | None:
    """Build a norm layer by name (InstanceNorm has no affine parameters, as in TAO)."""
    if kind is None:
        return None
    if kind not in _NORMS:
        raise ValueError(f"unknown norm {kind!r}; expected one of {sorted(_NORMS)}")
    return _NORMS[kind](channels)


class ConvNormAct(nn.Module):
    """Bias-free (de)convolution, optional norm, optional LeakyReLU(0.01).

    This is TAO's ``Conv`` / upstream's ``BasicConv``: ``conv`` then ``norm`` then the activation.
    """

    def __init__(self, in_channels: int, out_channels: int, *, conv: ConvKind = "conv2d",
                 norm: NormKind | None = None, act: bool = True, **conv_kwargs) -> None:
        super().__init__()
        if conv not in _CONVS:
            raise ValueError(f"unknown conv {conv!r}; expected one of {sorted(_CONVS)}")
        self.conv = _CONVS[conv](in_channels, out_channels, bias=False, **conv_kwargs)
        self.norm = make_norm(norm, out_channels)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.finish(self.conv(x))

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """Norm and activation of a convolution's output (the conv may have run split in parts)."""
        if self.norm is not None:
            x = self.norm(x)
        if self.act:
            x = F.leaky_relu(x, LEAKY_SLOPE)
        return x


class ResidualBlock(nn.Module):
    """ResNet basic block (conv-norm-ReLU-conv-norm, add, ReLU), 2D or 3D, bias-free convs."""

    def __init__(self, in_channels: int, out_channels: int, *, dims: int = 2,
                 norm: NormKind | None = "batch2d", kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else Conv3d
        if in_channels != out_channels:
            raise ValueError(f"ResidualBlock needs equal widths, got {in_channels} -> {out_channels}")
        self.conv1 = conv(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.bn1 = make_norm(norm, out_channels) or nn.Identity()
        self.conv2 = conv(out_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.bn2 = make_norm(norm, out_channels) or nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + x)


class AxialPlanarConv3d(nn.Module):
    """Axial-Planar Convolution (APC): a (1,k,k) spatial conv then a (kd,1,1) disparity conv.

    Each conv has a bias, BatchNorm3d and ReLU (TAO's ``Conv3dNormActReduced``). Factoring the
    3D kernel keeps a long disparity receptive field (``kernel_disp`` up to 17) cheap.
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int = 3,
                 kernel_disp: int | None = None, hidden: int | None = None) -> None:
        super().__init__()
        kernel_disp = kernel_size if kernel_disp is None else kernel_disp
        hidden = out_channels if hidden is None else hidden
        k = kernel_size
        self.conv1 = nn.Sequential(
            Conv3d(in_channels, hidden, (1, k, k), padding=(0, k // 2, k // 2)),
            nn.BatchNorm3d(hidden), nn.ReLU())
        self.conv2 = nn.Sequential(
            Conv3d(hidden, out_channels, (kernel_disp, 1, 1), padding=(kernel_disp // 2, 0, 0)),
            nn.BatchNorm3d(out_channels), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class FeatureAtt(nn.Module):
    """Feature-guided gating of a cost volume: ``cv * sigmoid(f(image feature))``.

    ``f`` is a 1x1 ConvNormAct (feat -> feat/2) and a 1x1 conv to the volume's channels; the
    2D gate broadcasts over the disparity axis.
    """

    def __init__(self, cv_channels: int, feat_channels: int, *, norm: NormKind = "batch2d") -> None:
        super().__init__()
        self.feat_att = nn.Sequential(
            ConvNormAct(feat_channels, feat_channels // 2, conv="conv2d", norm=norm, kernel_size=1),
            nn.Conv2d(feat_channels // 2, cv_channels, 1))

    def forward(self, cv: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        # the gate's gradient (a sum over the volume's disparities) in the feature's layout: its 1x1
        # convolution's backward would otherwise copy an NCHW one
        gate = grad_in_layout(self.feat_att(feat), memory_format_of(feat)).unsqueeze(2)
        # the full-size volume first: the product keeps its memory layout (e.g. channels_last_3d)
        return cv * torch.sigmoid(gate)


class LayerNormChannelsFirst(nn.LayerNorm):
    """LayerNorm over the channel axis of a (B, C, H, W) tensor (EdgeNeXt's channels_first LN)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class EdgeNextConvBlock(nn.Module):
    """EdgeNeXt / ConvNeXt block: depthwise kxk, (LayerNorm), Linear-GELU-Linear, layer scale, residual.

    Args:
        dim: channels in and out.
        kernel_size: depthwise kernel.
        hidden: width of the pointwise MLP (``pwconv1`` output); EdgeNeXt uses ``4 * dim``.
        norm: ``True`` adds a channels-last LayerNorm (eps 1e-6) after the depthwise conv
            (backbone blocks); the FFS disparity head uses blocks without it.
        layer_scale_init: initial value of ``gamma`` (EdgeNeXt: 1e-6).
    """

    def __init__(self, dim: int, *, kernel_size: int = 7, hidden: int | None = None, norm: bool = True,
                 layer_scale_init: float = 1e-6) -> None:
        super().__init__()
        hidden = 4 * dim if hidden is None else hidden
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6) if norm else None
        self.pwconv1 = nn.Linear(dim, hidden)
        self.pwconv2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init)))

    def forward(self, x: torch.Tensor, ops: LayerOps = PLAIN) -> torch.Tensor:
        y = ops.conv(x, [self.dwconv]).permute(0, 2, 3, 1)
        if self.norm is not None:
            y = self.norm(y)
        y = ops.linear(F.gelu(ops.linear(y, self.pwconv1)), self.pwconv2)
        return torch.addcmul(x, self.gamma.view(1, -1, 1, 1), y.permute(0, 3, 1, 2))   # x + gamma * y


def linear_upsample_matrix(size: int, scale: int, device: torch.device | None = None,
                           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(size * scale, size) matrix of 1-D linear upsampling, ``align_corners=False`` (PyTorch's rule:
    source ``(i + 0.5) / scale - 0.5`` clamped at 0, the upper neighbour clamped to the last)."""
    src = ((torch.arange(size * scale, device=device, dtype=torch.float32) + 0.5) / scale - 0.5).clamp(min=0)
    lo = src.floor().clamp(max=size - 1)
    frac = src - lo
    cols = torch.arange(size, device=device, dtype=torch.float32).view(1, size)
    hi = (lo + 1).clamp(max=size - 1).view(-1, 1)
    lo = lo.view(-1, 1)
    frac = frac.view(-1, 1)
    return ((cols == lo) * (1 - frac) + (cols == hi) * frac).to(dtype)


class TrilinearUpsample(nn.Module):
    """``nn.Upsample(scale_factor=s, mode="trilinear", align_corners=False)`` as three matrix products.

    Separable: W, then H, then D, each a product with a (n * s, n) interpolation matrix (two
    non-zeros per row). Same values up to rounding; the point is the backward: the interpolation's
    own backward scatters every output gradient into 8 input cells with atomic adds (5 ms of a
    training step at 320x736 on an H100/H200 under torch.compile, where the cell count is small
    and the contention high), while a matrix product's backward is another matrix product.
    Without gradients (eval mode, export, inference) it is ``F.interpolate`` itself: the inference
    fast path and the ONNX graph (a Resize) stay as measured.
    """

    def __init__(self, scale_factor: int) -> None:
        super().__init__()
        self.scale_factor = int(scale_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scale_factor
        if not (self.training and torch.is_grad_enabled()):
            return F.interpolate(x, scale_factor=s, mode="trilinear", align_corners=False)
        b, c, d, h, w = x.shape
        mats = [linear_upsample_matrix(n, s, x.device, x.dtype) for n in (d, h, w)]
        x = torch.matmul(x, mats[2].t())                                        # (B, C, D, H, sW)
        x = torch.matmul(mats[1], x)                                            # (B, C, D, sH, sW)
        x = torch.matmul(mats[0], x.reshape(b, c, d, -1))                       # (B, C, sD, sH * sW)
        return x.view(b, c, d * s, h * s, w * s)

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}"


class UpsampleFuse(nn.Module):
    """Upsample 2x with a transposed conv, concatenate a skip tensor, fuse with a conv.

    TAO's ``Conv2xDownScale`` (upstream ``Conv2x`` / ``Conv2x_IN``). ``conv1`` is a 4x4 stride-2
    ConvNormAct (LeakyReLU). The fuse step ``conv2`` is either a ResidualBlock at
    ``out_channels + skip_channels`` (``fuse="residual"``, the EdgeNeXt decoder) or a 3x3
    ConvNormAct to ``fuse_channels`` (``fuse="conv"``, the FFS upsampling head).
    """

    def __init__(self, in_channels: int, out_channels: int, skip_channels: int, *,
                 norm: NormKind | None = None, fuse: Literal["residual", "conv"] = "conv",
                 fuse_channels: int | None = None, fuse_act: bool = True) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(in_channels, out_channels, conv="deconv2d", norm=norm,
                                 kernel_size=4, stride=2, padding=1)
        cat = out_channels + skip_channels
        if fuse == "residual":
            self.conv2: nn.Module = ResidualBlock(cat, cat, dims=2, norm=norm)
        elif fuse == "conv":
            self.conv2 = ConvNormAct(cat, fuse_channels or cat, conv="conv2d", norm=norm, act=fuse_act,
                                     kernel_size=3, padding=1)
        else:
            raise ValueError(f"unknown fuse {fuse!r}; expected 'residual' or 'conv'")

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``skip`` has ``x``'s batch, or a batch that ``x``'s batch repeats (``K * B`` over ``B``:
        the skip is shared, as the FFS upsampling head's image stem is by all its iterations)."""
        x = self.conv1(x)
        if x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear")
        if x.shape[0] == skip.shape[0]:
            return self.conv2(torch.cat((x, skip), dim=1))
        return self._fuse_shared_skip(x, skip)

    def _fuse_shared_skip(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``conv2(cat(x, skip repeated))`` with the skip's share of the convolution computed once:
        the fuse is linear before its activation, so it splits into an ``x`` part and a skip part."""
        fuse = self.conv2
        if not isinstance(fuse, ConvNormAct) or fuse.norm is not None:
            raise ValueError("a shared skip needs the norm-free conv fuse (fuse='conv', norm=None)")
        conv, c = fuse.conv, x.shape[1]
        own = F.conv2d(x, conv.weight[:, :c], None, conv.stride, conv.padding)
        shared = F.conv2d(skip, conv.weight[:, c:], None, conv.stride, conv.padding)
        repeats = x.shape[0] // skip.shape[0]
        return fuse.finish((own.unflatten(0, (repeats, skip.shape[0])) + shared).flatten(0, 1))
