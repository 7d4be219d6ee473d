"""Triton kernels for the training lookup on CUDA: the gather and its gradient scatter.

Drop-in replacements for :func:`training_lookup.gather_lookup` and
:func:`cost_volume.add_lookup_grad_` (same arguments, same results up to fp32 summation order).
Inductor compiles those torch functions into kernels that address the (pixel, level, tap, channel)
tile element by element with 64-bit divisions and bounds checks, 0.1-0.2 ms per call each for
~30 MB of traffic (H200). Here one program owns ``BLOCK_N`` pixels of one level: it reads each
tap's store row as one contiguous vector of channels, blends neighbouring taps in registers and
writes the pixel's output channels (or, backward, the rows' gradients) in place.

Which store rows a lookup reads (:func:`cost_volume.lookup_rows`) stays in torch. The kernels run
where Triton imports and the tensors are on a GPU, or on the CPU under ``TRITON_INTERPRET=1``
(the tests); :func:`usable` says which.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from skillbank.runtime.networks.common.cost_volume import LookupRows, LookupTables, lookup_rows
from skillbank.runtime.networks.speed.triton_support import usable

__all__ = ["add_lookup_grad_", "gather_lookup", "usable"]

BLOCK_N = 8          # pixels per program


@functools.cache
def _kernels() -> tuple[Any, Any]:
    import triton
    import triton.language as tl

    @triton.jit
    def gather(geo_ptr, corr_ptr, gidx_ptr, cidx_ptr, gfrac_ptr, cfrac_ptr, out_ptr, n, out_stride,
               L: tl.constexpr, T: tl.constexpr, C: tl.constexpr, TP: tl.constexpr, CP: tl.constexpr,
               BN: tl.constexpr):
        level = tl.program_id(1)
        pix = tl.program_id(0) * BN + tl.arange(0, BN)                        # (BN,)
        k = tl.arange(0, TP)                                                  # output taps 0..T-2
        c = tl.arange(0, CP)
        pm = pix < n
        km = k < T - 1
        cm = c < C
        row = (pix * L + level) * T                                           # first tap's slot
        m2 = pm[:, None] & km[None, :]
        i0 = tl.load(gidx_ptr + row[:, None] + k[None, :], mask=m2, other=0)  # (BN, TP)
        i1 = tl.load(gidx_ptr + row[:, None] + k[None, :] + 1, mask=m2, other=0)
        f = tl.load(gfrac_ptr + pix * L + level, mask=pm, other=0.0)[:, None, None]
        m3 = m2[:, :, None] & cm[None, None, :]
        v0 = tl.load(geo_ptr + i0[:, :, None] * C + c[None, None, :], mask=m3, other=0.0).to(tl.float32)
        v1 = tl.load(geo_ptr + i1[:, :, None] * C + c[None, None, :], mask=m3, other=0.0).to(tl.float32)
        geo = v0 * (1.0 - f) + v1 * f                                         # (BN, TP, CP)
        base = pix[:, None, None] * out_stride + level * (C + 1) * (T - 1)
        # channel-major, tap-minor: output channel c * (T - 1) + k
        tl.store(out_ptr + base + c[None, None, :] * (T - 1) + k[None, :, None],
                 geo.to(out_ptr.dtype.element_ty), mask=m3)
        j0 = tl.load(cidx_ptr + row[:, None] + k[None, :], mask=m2, other=0)
        j1 = tl.load(cidx_ptr + row[:, None] + k[None, :] + 1, mask=m2, other=0)
        cf = tl.load(cfrac_ptr + pix * L + level, mask=pm, other=0.0)[:, None]
        w0 = tl.load(corr_ptr + j0, mask=m2, other=0.0).to(tl.float32)
        w1 = tl.load(corr_ptr + j1, mask=m2, other=0.0).to(tl.float32)
        corr = w0 * (1.0 - cf) + w1 * cf
        tl.store(out_ptr + pix[:, None] * out_stride + level * (C + 1) * (T - 1) + C * (T - 1) + k[None, :],
                 corr.to(out_ptr.dtype.element_ty), mask=m2)

    @triton.jit
    def scatter(grad_ptr, grad_stride, gidx_ptr, cidx_ptr, gfrac_ptr, cfrac_ptr, geo_acc_ptr, corr_acc_ptr, n,
                L: tl.constexpr, T: tl.constexpr, C: tl.constexpr, TP: tl.constexpr, CP: tl.constexpr,
                BN: tl.constexpr):
        level = tl.program_id(1)
        pix = tl.program_id(0) * BN + tl.arange(0, BN)
        j = tl.arange(0, TP)                                                  # store slots 0..T-1
        c = tl.arange(0, CP)
        pm = pix < n
        cm = c < C
        row = (pix * L + level) * T
        mj = pm[:, None] & (j[None, :] < T)
        # slot j takes tap j's share (1 - f) and tap j-1's share f
        left = pm[:, None] & (j[None, :] < T - 1)
        right = pm[:, None] & (j[None, :] >= 1) & (j[None, :] < T)
        f = tl.load(gfrac_ptr + pix * L + level, mask=pm, other=0.0)[:, None, None]
        base = pix[:, None, None] * grad_stride + level * (C + 1) * (T - 1) + c[None, None, :] * (T - 1)
        gl = tl.load(grad_ptr + base + j[None, :, None], mask=left[:, :, None] & cm[None, None, :],
                     other=0.0).to(tl.float32)
        gr = tl.load(grad_ptr + base + j[None, :, None] - 1, mask=right[:, :, None] & cm[None, None, :],
                     other=0.0).to(tl.float32)
        m3 = mj[:, :, None] & cm[None, None, :]
        rows = tl.load(gidx_ptr + row[:, None] + j[None, :], mask=mj, other=0)
        ptr = geo_acc_ptr + rows[:, :, None] * C + c[None, None, :]
        acc = tl.load(ptr, mask=m3, other=0.0).to(tl.float32) + gl * (1.0 - f) + gr * f
        tl.store(ptr, acc.to(geo_acc_ptr.dtype.element_ty), mask=m3)
        cf = tl.load(cfrac_ptr + pix * L + level, mask=pm, other=0.0)[:, None]
        cbase = pix[:, None] * grad_stride + level * (C + 1) * (T - 1) + C * (T - 1)
        hl = tl.load(grad_ptr + cbase + j[None, :], mask=left, other=0.0).to(tl.float32)
        hr = tl.load(grad_ptr + cbase + j[None, :] - 1, mask=right, other=0.0).to(tl.float32)
        crows = tl.load(cidx_ptr + row[:, None] + j[None, :], mask=mj, other=0)
        cptr = corr_acc_ptr + crows
        cacc = tl.load(cptr, mask=mj, other=0.0).to(tl.float32) + hl * (1.0 - cf) + hr * cf
        tl.store(cptr, cacc.to(corr_acc_ptr.dtype.element_ty), mask=mj)

    return gather, scatter


def _shape(rows: LookupRows, channels: int) -> tuple[int, int, int, dict[str, int]]:
    import triton

    n, levels = rows.geo_frac.shape[:2]
    taps = rows.geo_idx.numel() // (n * levels)
    meta = {"L": levels, "T": taps, "C": channels, "TP": triton.next_power_of_2(taps),
            "CP": triton.next_power_of_2(channels), "BN": BLOCK_N}
    return n, levels, taps, meta


def _row_args(rows: LookupRows, n: int, levels: int) -> tuple[torch.Tensor, ...]:
    """The kernels' row arguments: both index vectors and both fractions as (N, L) (views of
    :func:`cost_volume.lookup_rows`'s contiguous fractions; a copy only for other layouts)."""
    return (rows.geo_idx, rows.corr_idx, rows.geo_frac.reshape(n, levels).contiguous(),
            rows.corr_frac.reshape(n, levels).contiguous())


def gather_lookup(tables: LookupTables, disp: torch.Tensor, channels_last: bool, pad_channels: int,
                  out_dtype: torch.dtype, rows_fn: Callable[..., LookupRows] = lookup_rows,
                  ) -> tuple[torch.Tensor, LookupRows]:
    """:func:`training_lookup.gather_lookup`: :func:`cost_volume.sample_lookup` in ``out_dtype`` and
    its rows (``rows_fn``: :func:`cost_volume.lookup_rows` or a compiled version of it)."""
    rows = rows_fn(tables, disp)
    c = tables.geo_store.shape[1]
    n, levels, taps, meta = _shape(rows, c)
    real = levels * (c + 1) * (taps - 1)
    out = torch.empty(n, real + pad_channels, device=tables.geo_store.device, dtype=out_dtype)
    if pad_channels:
        out[:, real:].zero_()
    gather, _ = _kernels()
    grid = ((n + BLOCK_N - 1) // BLOCK_N, levels)
    gather[grid](tables.geo_store.contiguous(), tables.corr_store.contiguous(), *_row_args(rows, n, levels),
                 out, n, out.stride(0), **meta)
    b, _, h, w = disp.shape
    feat = out.view(b, h, w, -1).permute(0, 3, 1, 2)
    return (feat if channels_last else feat.contiguous()), rows


def add_lookup_grad_(grad_feat: torch.Tensor, rows: LookupRows, geo_grad: torch.Tensor,
                     corr_grad: torch.Tensor) -> None:
    """:func:`cost_volume.add_lookup_grad_`: the lookup's adjoint added into the two buffers in place."""
    n, levels, _, meta = _shape(rows, geo_grad.shape[1])
    g = grad_feat.permute(0, 2, 3, 1).reshape(n, -1)       # a view for channels_last gradients
    if g.stride(1) != 1:
        g = g.contiguous()
    _, scatter = _kernels()
    grid = ((n + BLOCK_N - 1) // BLOCK_N, levels)
    scatter[grid](g, g.stride(0), *_row_args(rows, n, levels), geo_grad, corr_grad, n, **meta)
