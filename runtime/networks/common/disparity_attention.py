"""The Disparity Transformer: self-attention along the disparity axis of a cost volume, at every pixel.

Both stereo networks run it on a patchified volume (FFS: 1 layer in ``post8_to_4`` of its hourglass;
FoundationStereo: 4 layers in ``atts.cost_vol_disp``): each (x, y) cell is a sequence of disparity
tokens of ``volume_dim`` channels with sinusoidal positions, through post-norm encoder layers.

``disparity_attention_layout``:
- ``"heads"`` (upstream FoundationStereo since mid-2025, and what FFS bp2 was trained with): q/k/v are
  handed to SDPA as (B, L, heads, head_dim), so SDPA treats the heads as the sequence: each token
  attends over its own 4 heads and disparity tokens never exchange information in the attention step
  (:func:`heads_attention` writes that 4x4 attention out).
- ``"tokens"``: textbook multi-head attention across the disparity tokens of a cell.
Both have the same parameters; their outputs differ.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

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
