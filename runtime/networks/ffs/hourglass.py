"""FFS cost-volume filtering: the searched 3D hourglass and the 1-layer disparity transformer.

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
                    hourglass *input*; then conv + 3D residual block.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from skillbank.runtime.networks.common.blocks import (
    AxialPlanarConv3d,
    ConvNormAct,
    FeatureAtt,
    ResidualBlock,
    TrilinearUpsample,
)
from skillbank.runtime.networks.speed.grad_layout import memory_format_of

AttentionLayout = Literal["heads", "tokens"]


class SinusoidalPositions(nn.Module):
    """Fixed sine/cosine position table added to (N, L, C) sequences (not saved in state_dict)."""

    def __init__(self, dim: int, max_len: int) -> None:
        super().__init__()
        pe = torch.zeros(max_len, dim)
        position = torch.arange(0, max_len).float().unsqueeze(1)
        div_term = (torch.arange(0, dim, 2).float() * -(math.log(10000.0) / dim)).exp()[None]
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pe.shape[1]:
            raise ValueError(f"sequence of {x.shape[1]} disparity tokens exceeds the position table "
                             f"({self.pe.shape[1]}); raise max_disparity")
        return x + self.pe[:, :x.shape[1]].to(x.dtype)


class DisparityMultiheadAttention(nn.Module):
    """Multi-head self-attention with two head layouts.

    ``layout="heads"`` reproduces the upstream FoundationStereo / TAO quirk that bp2 was trained
    with: q/k/v are viewed as (N, L, heads, dim) and handed to SDPA as is, so each position
    attends across its own ``heads`` sub-vectors (a 4-token attention per disparity).
    ``layout="tokens"`` is textbook attention across the ``L`` disparity tokens per head.
    """

    def __init__(self, dim: int, num_heads: int, layout: AttentionLayout = "heads") -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} must be divisible by the {num_heads} heads")
        if layout not in ("heads", "tokens"):
            raise ValueError(f"disparity_attention_layout must be 'heads' or 'tokens', got {layout!r}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.layout = layout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        shape = (n, length, self.num_heads, self.head_dim)
        q, k, v = (p(x).view(shape) for p in (self.q_proj, self.k_proj, self.v_proj))
        if self.layout == "tokens":
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))
            out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
        else:
            out = heads_attention(q, k, v)
        return self.out_proj(out.reshape(n, length, dim))


def heads_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``F.scaled_dot_product_attention(q, k, v)`` for (N, L, heads, head_dim) inputs, written out.

    In the "heads" layout SDPA sees ``heads`` (4) as the sequence and a tiny ``head_dim`` (7 for
    bp2): a flash kernel for 4x4 attention matrices costs ~0.3 ms at 480x736 on an H100, while
    these broadcast products and sums are a few small kernels eager and one fused kernel under
    ``torch.compile``. Computed in fp32 (at least) and returned in ``v``'s dtype, as SDPA does.
    """
    acc = torch.promote_types(q.dtype, torch.float32)
    q, k, vf = q.to(acc), k.to(acc), v.to(acc)
    scores = (q.unsqueeze(-2) * k.unsqueeze(-3)).sum(-1) * q.shape[-1] ** -0.5    # (N, L, heads, heads)
    weights = torch.softmax(scores, dim=-1)
    return (weights.unsqueeze(-1) * vf.unsqueeze(-3)).sum(-2).to(v.dtype)          # (N, L, heads, head_dim)


class TransformerEncoderLayer(nn.Module):
    """Post-norm transformer layer: LN(x + attn(x)), then LN(x + MLP(x)), GELU, dropout 0.1."""

    def __init__(self, dim: int, num_heads: int, dim_feedforward: int, *, dropout: float = 0.1,
                 layout: AttentionLayout = "heads") -> None:
        super().__init__()
        self.self_attn = DisparityMultiheadAttention(dim, num_heads, layout)
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout1(self.self_attn(x)))
        y = self.linear2(self.dropout(F.gelu(self.linear1(x))))
        return self.norm2(x + self.dropout2(y))


class CostVolumeDisparityAttention(nn.Module):
    """Transformer along the disparity axis of a (B, C, D, H, W) volume, at every pixel."""

    def __init__(self, dim: int, num_heads: int, dim_feedforward: int, *, num_layers: int, max_len: int,
                 layout: AttentionLayout = "heads") -> None:
        super().__init__()
        self.sa = nn.ModuleList(
            TransformerEncoderLayer(dim, num_heads, dim_feedforward, layout=layout) for _ in range(num_layers))
        self.pos_embed0 = SinusoidalPositions(dim, max_len)

    def forward(self, cv: torch.Tensor) -> torch.Tensor:
        b, c, d, h, w = cv.shape
        x = cv.permute(0, 3, 4, 2, 1).reshape(b * h * w, d, c)
        x = self.pos_embed0(x)
        for layer in self.sa:
            x = layer(x)
        out = x.reshape(b, h, w, d, c).permute(0, 4, 3, 1, 2)
        if cv.is_contiguous(memory_format=torch.channels_last_3d) and not cv.is_contiguous():
            return out.contiguous(memory_format=torch.channels_last_3d)   # small (1/16): keep the layout
        return out.contiguous()


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
