"""DINOv2-style Vision Transformer: the encoder of DepthAnythingV2 (and of FoundationStereo's ViT branch).

The image is cut into 14x14 patches, each projected to ``embed_dim`` by a strided conv; a learned class
token is prepended and a learned positional embedding (trained for a 37x37 grid, i.e. 518 px) is added
after bicubic interpolation to the actual grid. Pre-norm transformer blocks follow, each with layer-scale
on both residual branches. ``get_intermediate_layers`` returns the (normed) tokens of the blocks that the
DPT head taps.

Parameter names mirror DINOv2 / DepthAnythingV2 (``patch_embed.proj``, ``pos_embed``, ``cls_token``,
``mask_token``, ``blocks.N.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.fc1,mlp.fc2,ls2.gamma}``,
``norm``; ViT-g uses ``mlp.w12`` / ``mlp.w3`` for its SwiGLU FFN) so upstream checkpoints load with
``strict=True``. Attention uses PyTorch's scaled_dot_product_attention (no xformers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

PATCH_SIZE = 14
PRETRAIN_GRID = 37  # DINOv2 / DepthAnythingV2 are built with img_size 518 = 37 * 14


@dataclass(frozen=True)
class ViTSpec:
    """Size of one DINOv2 variant."""

    embed_dim: int
    depth: int
    num_heads: int
    ffn: str  # "mlp" (GELU MLP) or "swiglu"


VIT_SPECS: dict[str, ViTSpec] = {
    "vits": ViTSpec(384, 12, 6, "mlp"),
    "vitb": ViTSpec(768, 12, 12, "mlp"),
    "vitl": ViTSpec(1024, 24, 16, "mlp"),
    "vitg": ViTSpec(1536, 40, 24, "swiglu"),
}

# Blocks whose outputs the DPT head of DepthAnythingV2 reads, per encoder.
INTERMEDIATE_LAYERS: dict[str, list[int]] = {
    "vits": [2, 5, 8, 11],
    "vitb": [2, 5, 8, 11],
    "vitl": [4, 11, 17, 23],
    "vitg": [9, 19, 29, 39],
}


class PatchEmbed(nn.Module):
    """(B,3,H,W) -> (B, H/14 * W/14, dim) with one strided conv; H and W must be multiples of 14."""

    def __init__(self, dim: int, patch_size: int = PATCH_SIZE, in_chans: int = 3) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"PatchEmbed: input {h}x{w} must be a multiple of the {self.patch_size} px patch")
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"Attention: dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, dh)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """Linear -> GELU -> Linear (ViT-S/B/L)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLUFFN(nn.Module):
    """SwiGLU feed-forward of ViT-g: silu(x W1) * (x W2) -> W3, with W1|W2 fused as ``w12``.

    Like DINOv2's fused variant, the hidden width is 2/3 of the nominal one, rounded up to a multiple of 8
    (ViT-g: 4 * 1536 -> 4096).
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


class LayerScale(nn.Module):
    """Per-channel learned scale on a residual branch (``gamma``)."""

    def __init__(self, dim: int, init_value: float = 1.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm1(x))), then x + ls2(ffn(norm2(x)))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, ffn: str = "mlp") -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = SwiGLUFFN(dim, hidden) if ffn == "swiglu" else Mlp(dim, hidden)
        self.ls2 = LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoVisionTransformer(nn.Module):
    """DINOv2 ViT (patch 14, one class token, no register tokens).

    Build a named variant with :func:`build_vit` (``"vits"`` ... ``"vitg"``); the constructor also takes
    explicit sizes so tests can build a tiny one.
    """

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        num_heads: int,
        ffn: str = "mlp",
        patch_size: int = PATCH_SIZE,
        pretrain_grid: int = PRETRAIN_GRID,
        interpolate_offset: float = 0.1,
    ) -> None:
        super().__init__()
        if ffn not in ("mlp", "swiglu"):
            raise ValueError(f"DinoVisionTransformer: ffn {ffn!r} is not one of 'mlp', 'swiglu'")
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.interpolate_offset = interpolate_offset
        self.patch_embed = PatchEmbed(embed_dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, pretrain_grid * pretrain_grid + 1, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, ffn=ffn) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        # Unused at inference (masked-image pre-training) but present in every checkpoint.
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim))
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def interpolate_pos_encoding(self, grid_h: int, grid_w: int, dtype: torch.dtype) -> torch.Tensor:
        """Positional embedding for a ``grid_h`` x ``grid_w`` patch grid (class slot first).

        As DINOv2 does: bicubic resize of the square pre-training grid by a scale factor computed from
        ``grid + 0.1`` (the offset avoids a floor() landing one short), no antialiasing, in fp32.
        """
        n = self.pos_embed.shape[1] - 1
        side = int(math.sqrt(n))
        if grid_h == side and grid_w == side:
            return self.pos_embed.to(dtype)
        pos = self.pos_embed.float()
        cls_pos, patch_pos = pos[:, :1], pos[:, 1:]
        scale = ((grid_h + self.interpolate_offset) / side, (grid_w + self.interpolate_offset) / side)
        patch_pos = patch_pos.reshape(1, side, side, -1).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(patch_pos, scale_factor=scale, mode="bicubic", antialias=False)
        if patch_pos.shape[-2:] != (grid_h, grid_w):
            got = tuple(patch_pos.shape[-2:])
            raise RuntimeError(f"pos_embed resize gave grid {got}, expected {(grid_h, grid_w)}")
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)
        return torch.cat((cls_pos, patch_pos), dim=1).to(dtype)

    def prepare_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Patchify, prepend the class token, add the positional embedding: (B, 1 + N, dim)."""
        # Python ints (also under ONNX tracing): the grid is baked into the positional embedding.
        grid_h, grid_w = int(x.shape[-2]) // self.patch_size, int(x.shape[-1]) // self.patch_size
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1).to(tokens.dtype), tokens), dim=1)
        return tokens + self.interpolate_pos_encoding(grid_h, grid_w, tokens.dtype)

    def get_intermediate_layers(
        self,
        x: torch.Tensor,
        n: int | list[int] = 1,
        reshape: bool = False,
        return_class_token: bool = False,
        norm: bool = True,
    ) -> tuple:
        """Outputs of chosen blocks.

        ``n``: an int takes the last n blocks, a list takes those block indices. Each output is the
        final-LayerNorm'd token sequence without the class token, (B, N, dim), or (B, dim, h, w) with
        ``reshape``. With ``return_class_token`` each item is a ``(patch_tokens, class_token)`` pair, the
        form the DPT head reads.
        """
        depth = len(self.blocks)
        take = list(range(depth - n, depth)) if isinstance(n, int) else list(n)
        if any(i < 0 or i >= depth for i in take):
            raise ValueError(f"get_intermediate_layers: block indices {take} out of range for depth {depth}")
        tokens = self.prepare_tokens(x)
        outputs = []
        for i, blk in enumerate(self.blocks[: max(take) + 1]):
            tokens = blk(tokens)
            if i in take:
                outputs.append(tokens)
        if norm:
            outputs = [self.norm(o) for o in outputs]
        cls_tokens = [o[:, 0] for o in outputs]
        patches = [o[:, 1:] for o in outputs]
        if reshape:
            h, w = int(x.shape[-2]) // self.patch_size, int(x.shape[-1]) // self.patch_size
            patches = [p.transpose(1, 2).reshape(p.shape[0], -1, h, w).contiguous() for p in patches]
        if return_class_token:
            return tuple(zip(patches, cls_tokens, strict=True))
        return tuple(patches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised class token (B, dim), as DINOv2's inference forward returns."""
        tokens = self.prepare_tokens(x)
        for blk in self.blocks:
            tokens = blk(tokens)
        return self.norm(tokens)[:, 0]


def build_vit(encoder: str) -> DinoVisionTransformer:
    """DINOv2 ViT as DepthAnythingV2 builds it (518-px positional grid, layer-scale init 1.0)."""
    if encoder not in VIT_SPECS:
        raise ValueError(f"encoder {encoder!r} is not one of {sorted(VIT_SPECS)}")
    s = VIT_SPECS[encoder]
    return DinoVisionTransformer(s.embed_dim, s.depth, s.num_heads, ffn=s.ffn)
