"""A Triton depthwise ``k x k`` convolution for channels_last tensors, forward and input gradient.

cuDNN runs the disparity head's depthwise 7x7 convolutions (40 channels at 1/4 resolution, 2.4 MB a
tensor) with a grouped kernel that takes ~30 us a forward and ~22 us an input gradient on an H100:
some 20x the time the tensor's traffic needs, 44 of each in a 22-iteration training step. Here one
program owns a tile of ``ROWS`` output rows x ``COLS`` columns x ``CB`` channels of one image. It
walks the ``ROWS + k - 1`` input rows the tile needs once: each input row's ``k`` shifted column
segments are loaded once (``(ROWS + k - 1) * k / ROWS`` loads an output instead of ``k * k``) and
each segment is multiplied into all ``ROWS`` output rows at once, with the filter row that links
them (zero where none does). fp32 accumulation; the output in the input's dtype.

The input gradient of a stride-1, ``k // 2``-padded depthwise convolution is the same convolution of
the output gradient with the filter rotated by 180 degrees (``flip``). The weight and bias gradients
stay cuDNN's (``convolution_backward``; the training step defers them to a side stream anyway).

:func:`depthwise_conv` is the operator ``skillbank::depthwise_conv`` (a ``torch.library`` custom op
with a fake tensor rule and autograd, so ``torch.compile`` calls it from compiled graphs, CUDA graphs
capture it); :func:`usable` says when :mod:`layer_ops` routes a convolution to it: CUDA (or the CPU
under ``TRITON_INTERPRET=1``), channels_last input, odd square kernel, stride 1, ``k // 2`` padding,
one channel per group. ``SKILLBANK_DEPTHWISE_TRITON=0`` turns the routing off.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch
from torch import nn

from skillbank.runtime.networks import triton_support

__all__ = ["ENABLED", "TILE", "depthwise_conv", "depthwise_conv_", "usable"]

#: routing on (``SKILLBANK_DEPTHWISE_TRITON=0``: cuDNN's grouped convolution everywhere)
ENABLED = os.environ.get("SKILLBANK_DEPTHWISE_TRITON", "1") != "0"
#: (ROWS, COLS, CB, num_warps): output rows, columns and channels a program computes
TILE = (8, 32, 8, 4)


@functools.cache
def _kernel() -> Any:
    import triton
    import triton.language as tl

    @triton.jit
    def depthwise(x_ptr, w_ptr, b_ptr, y_ptr, H, W, C, row_tiles,
                  sxn, sxh, sxw, sxc, swc, swy, swx, syn, syh, syw, syc,
                  K: tl.constexpr, FLIP: tl.constexpr, HAS_BIAS: tl.constexpr,
                  ROWS: tl.constexpr, COLS: tl.constexpr, CB: tl.constexpr):
        n = tl.program_id(0) // row_tiles
        r0 = (tl.program_id(0) % row_tiles) * ROWS
        cols = tl.program_id(1) * COLS + tl.arange(0, COLS)                   # (COLS,)
        ch = tl.program_id(2) * CB + tl.arange(0, CB)                         # (CB,)
        cm = ch < C
        rows = tl.arange(0, ROWS)                                             # output rows r0 + rows
        P: tl.constexpr = K // 2
        acc = tl.zeros((ROWS, COLS, CB), dtype=tl.float32)
        x_img = x_ptr + n.to(tl.int64) * sxn
        for i in tl.static_range(ROWS + K - 1):                              # input row r0 - P + i
            h_in = r0 - P + i
            ky = i - rows                                                     # its filter row per output row
            km = (ky >= 0) & (ky < K)
            if FLIP:
                ky = K - 1 - ky
            for dx in tl.static_range(K):
                w_in = cols + (dx - P)
                xm = (w_in >= 0) & (w_in < W) & (h_in >= 0) & (h_in < H)
                seg = tl.load(x_img + h_in * sxh + w_in[:, None] * sxw + ch[None, :] * sxc,
                              mask=xm[:, None] & cm[None, :], other=0.0).to(tl.float32)   # (COLS, CB)
                kx = K - 1 - dx if FLIP else dx
                wt = tl.load(w_ptr + ch[None, :] * swc + ky[:, None] * swy + kx * swx,
                             mask=km[:, None] & cm[None, :], other=0.0).to(tl.float32)    # (ROWS, CB)
                acc += wt[:, None, :] * seg[None, :, :]
        if HAS_BIAS:
            acc += tl.load(b_ptr + ch, mask=cm, other=0.0).to(tl.float32)[None, None, :]
        h_out = r0 + rows
        ym = (h_out < H)[:, None, None] & (cols < W)[None, :, None] & cm[None, None, :]
        y_img = y_ptr + n.to(tl.int64) * syn
        tl.store(y_img + h_out[:, None, None] * syh + cols[None, :, None] * syw + ch[None, None, :] * syc,
                 acc.to(y_ptr.dtype.element_ty), mask=ym)

    return depthwise


def depthwise_conv_(y: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                    flip: bool = False, tile: tuple[int, int, int, int] = TILE) -> torch.Tensor:
    """Write the depthwise convolution of ``x`` (B, C, H, W) with ``weight`` (C, 1, k, k) (rotated 180
    degrees if ``flip``) and ``bias`` into ``y`` (any strides); ``tile``: (ROWS, COLS, CB, num_warps)."""
    rows, cols, cb, warps = tile
    b, c, h, w = x.shape
    k = weight.shape[-1]
    row_tiles = -(-h // rows)
    grid = (b * row_tiles, -(-w // cols), -(-c // cb))
    _kernel()[grid](x, weight, bias if bias is not None else weight, y, h, w, c, row_tiles,
                    *_nhwc_strides(x), weight.stride(0), weight.stride(2), weight.stride(3), *_nhwc_strides(y),
                    K=k, FLIP=flip, HAS_BIAS=bias is not None, ROWS=rows, COLS=cols, CB=cb, num_warps=warps)
    return y


def _nhwc_strides(t: torch.Tensor) -> tuple[int, int, int, int]:
    """(batch, row, column, channel) strides of a (B, C, H, W) tensor."""
    return t.stride(0), t.stride(2), t.stride(3), t.stride(1)


@torch.library.custom_op("skillbank::depthwise_conv", mutates_args=())
def depthwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, flip: bool) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=k // 2, groups=C)`` (``flip``: with the filter rotated 180
    degrees) for a channels_last ``x``; the output is channels_last."""
    y = torch.empty_like(x, memory_format=torch.channels_last)
    return depthwise_conv_(y, x, weight, bias, flip)


@depthwise_conv.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, flip: bool) -> torch.Tensor:
    return torch.empty_like(x, memory_format=torch.channels_last)


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    x, weight, bias, flip = inputs
    ctx.flip, ctx.has_bias = flip, bias is not None
    ctx.save_for_backward(x, weight)


def _backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
    x, weight = ctx.saved_tensors
    grad = grad.contiguous(memory_format=torch.channels_last)
    dx = depthwise_conv(grad, weight, None, not ctx.flip) if ctx.needs_input_grad[0] else None
    need_w, need_b = ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]
    dw = db = None
    if need_w or need_b:
        k = weight.shape[-1]
        w = weight.flip(-2, -1) if ctx.flip else weight
        _, dw, db = torch.ops.aten.convolution_backward(
            grad, x, w, [w.shape[0]] if ctx.has_bias else None, [1, 1], [k // 2, k // 2], [1, 1], False, [0, 0],
            w.shape[0], [False, need_w, need_b])
        if dw is not None and ctx.flip:
            dw = dw.flip(-2, -1)
    return dx, dw, db, None


depthwise_conv.register_autograd(_backward, setup_context=_setup_context)


def usable(x: torch.Tensor, conv: nn.Conv2d, weight: torch.Tensor) -> bool:
    """Whether :func:`depthwise_conv` computes ``conv`` (with ``weight``) of ``x``: a depthwise, odd
    square, stride-1, same-padded convolution of a channels_last tensor where Triton runs."""
    k = weight.shape[-1]
    return (ENABLED and triton_support.usable(x) and x.dim() == 4
            and conv.groups == x.shape[1] == weight.shape[0] and weight.shape[1] == 1
            and weight.shape[-2] == k and k % 2 == 1 and conv.stride == (1, 1) and conv.dilation == (1, 1)
            and conv.padding == (k // 2, k // 2) and conv.padding_mode == "zeros"
            and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
