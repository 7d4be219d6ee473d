"""Stereo cost volumes and the gather-based disparity lookup.

Conventions: features are (B, C, H, W) at 1/4 resolution, ``D`` disparity levels, and the
right-image match of left pixel ``w`` at disparity ``d`` is ``w - d`` (zero when ``w < d``).

- :func:`build_gwc_volume`: group-wise correlation (B, G, D, H, W). Features are L2-normalised
  per group (cosine similarity) in fp32 when ``normalize``; built from one batched matmul
  (all pairs along each row) and a strided reading of its ``w - d`` diagonal band.
- :func:`build_concat_volume`: left features repeated over D next to the shifted right
  features (B, 2C, D, H, W), again a strided reading (of the right rows repeated D times).
- :class:`GeoEncodingLookup`: the per-iteration lookup of the refinement loop. It keeps
  ``corr_levels`` pyramids of the filtered volume (C channels over D) and of the all-pairs
  cosine correlation (1 channel over W) and samples ``2r+1`` taps around the current
  disparity with 1-D linear interpolation and zero padding: exactly what ``grid_sample``
  with ``align_corners=True`` computes on these volumes, implemented with one row gather per
  table (no GridSample, export friendly, no host syncs).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch.autograd import Function


def build_gwc_volume(left: torch.Tensor, right: torch.Tensor, max_disp: int, num_groups: int,
                     normalize: bool = True) -> torch.Tensor:
    """Group-wise correlation volume (B, G, D, H, W), computed in fp32.

    ``volume[b, g, d, h, w] = <l[g, :, h, w], r[g, :, h, w - d]>`` summed over the group's
    channels, with per-group L2 normalisation of both vectors when ``normalize`` (the bp2
    setting); zero where ``w < d``.
    """
    b, c, h, w = left.shape
    if c % num_groups:
        raise ValueError(f"feature channels ({c}) must be divisible by cv_group ({num_groups})")
    cg = c // num_groups
    with torch.autocast(left.device.type, enabled=False):
        lf = left.float().reshape(b, num_groups, cg, h, w)
        rf = right.float().reshape(b, num_groups, cg, h, w)
        if normalize:
            lf = F.normalize(lf, dim=2)
            rf = F.normalize(rf, dim=2)
        # all pairs along each image row against the right row shifted by D zero columns:
        # pairs[..., w, j] = <l_w, r_(j - D)>, (B, G, H, W, W + D)
        a, b = lf.permute(0, 1, 3, 4, 2), F.pad(rf.permute(0, 1, 3, 2, 4), (max_disp, 0))
        training = torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)
        pairs = _RowPairs.apply(a, b) if training else torch.matmul(a, b)
        return _diagonal_band(pairs, max_disp).permute(0, 1, 3, 2, 4)


class _RowPairs(Function):
    """``a @ b`` in fp32 whose backward's products also run in fp32, on a contiguous gradient.

    Compiled inside an autocast region, autograd's own backward of the matmul ran its products in bf16
    (the H100 profile: this function's ``enabled=False`` did not reach the compiled backward) on a
    gradient laid out in the volume's channels_last_3d order, which cuBLAS cannot read: each of the two
    products copied 110 MB through a strided kernel first (~0.9 ms a step on an H100). Forward values
    are unchanged; the gradients are autograd's in fp32.
    """

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        return torch.matmul(a, b)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = ctx.saved_tensors
        with torch.autocast(grad.device.type, enabled=False):
            grad = grad.float().contiguous()
            return torch.matmul(grad, b.transpose(-1, -2)), torch.matmul(a.transpose(-1, -2), grad)


def _diagonal_band(pairs: torch.Tensor, max_disp: int) -> torch.Tensor:
    """``band[..., d, w] = pairs[..., w, w - d + D]`` for ``pairs`` (..., W, W + D): (..., D, W).

    Reading each row with a stride one longer than the row is a diagonal walk: flatten, append
    W zeros, view as (W, W + D + 1) and entry ``[w, k]`` is ``pairs[w, w + k - 1]``; columns
    ``k = D - d + 1`` give the band. Pad, reshape and slice only: the backward is their
    transposes (no scatter with atomics, which a gather-based band needs).
    """
    *lead, w, row = pairs.shape
    flat = F.pad(pairs.reshape(*lead, w * row), (0, w))
    band = flat.view(*lead, w, row + 1)[..., 1:max_disp + 1]         # [w, D - d]
    return band.flip(-1).transpose(-1, -2)


def build_concat_volume(left: torch.Tensor, right: torch.Tensor, max_disp: int) -> torch.Tensor:
    """Concatenation volume (B, 2C, D, H, W): left features, then right features shifted by d."""
    b, c, h, w = left.shape
    # each row D + 1 times over, zero-padded to rp[j] = right[j - D] (D zeros left, one right);
    # read with a row stride one shorter, row d starts d entries earlier: [d, D + w] = right[w - d]
    rp = F.pad(right, (max_disp, 1))
    rows = rp.unsqueeze(3).expand(b, c, h, max_disp, w + max_disp + 1).reshape(b, c, h, -1)
    shifted = rows[..., :max_disp * (w + max_disp)].view(b, c, h, max_disp, w + max_disp)[..., max_disp:]
    return torch.cat((left.unsqueeze(2).expand(b, c, max_disp, h, w), shifted.permute(0, 1, 3, 2, 4)), dim=1)


def all_pairs_correlation(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Cosine correlation of every left pixel with every right pixel of its row: (B, H, W, W), fp32."""
    with torch.autocast(left.device.type, enabled=False):
        lf = F.normalize(left.float(), dim=1)
        rf = F.normalize(right.float(), dim=1)
        return torch.matmul(lf.permute(0, 2, 3, 1), rf.permute(0, 2, 1, 3))


def halve_last_dim(x: torch.Tensor) -> torch.Tensor:
    """Average adjacent pairs on the last axis (a [1, 2] average pool; an odd tail is dropped)."""
    return 0.5 * (x[..., 0:-1:2] + x[..., 1::2])


class LookupTables(NamedTuple):
    """Everything the per-iteration lookup reads, built once per forward (:func:`build_lookup_tables`).

    Plain tensors only, so a compiled region can build and return them (``compile_regions``).
    """

    geo_store: torch.Tensor     # (rows, C) geometry rows of every level, zero-padded per pixel
    corr_store: torch.Tensor    # (rows,) correlation values of every level, zero-padded per pixel
    row_start: torch.Tensor     # (N, 2L, 1) long: store offset of each (pixel, sampling) row block
    is_corr: torch.Tensor       # (1, 2L) bool: samplings alternate geometry / correlation
    scale: torch.Tensor         # (1, 2L) 2^-level
    upper: torch.Tensor         # (1, 2L, 1) last padded index of each sampling's block
    clamp_hi: torch.Tensor      # (1, 2L) centre clamp (far out: all taps read zeros)
    taps: torch.Tensor          # (2r+2,) float 0..2r+1
    coords: torch.Tensor        # (N, 1) float pixel column of every (b, h, w)


def build_lookup_tables(left: torch.Tensor, right: torch.Tensor, geo_volume: torch.Tensor,
                        num_levels: int, radius: int) -> LookupTables:
    """The geometry and correlation pyramids of :class:`GeoEncodingLookup` (see there)."""
    b, c, d, h, w = geo_volume.shape
    n = b * h * w
    device = geo_volume.device
    with torch.autocast(device.type, enabled=False):
        geo = geo_volume.permute(0, 3, 4, 2, 1).reshape(n, d, c)                 # (N, D, C)
        corr = all_pairs_correlation(left, right).reshape(n, -1)                 # (N, W2)
        geo_rows, corr_rows, geo_len, corr_len, geo_off, corr_off = [], [], [], [], [], []
        g_rows = c_rows = 0
        for level in range(num_levels):
            if level > 0:
                geo = halve_last_dim(geo.float().transpose(1, 2)).transpose(1, 2).to(geo_volume.dtype)
                corr = halve_last_dim(corr)
            geo_rows.append(F.pad(geo, (0, 0, 1, 1)).reshape(-1, c))           # (N * (D_l + 2), C)
            corr_rows.append(F.pad(corr, (1, 1)).reshape(-1))                  # (N * (W2_l + 2),)
            geo_len.append(geo.shape[1])
            corr_len.append(corr.shape[1])
            geo_off.append(g_rows)
            corr_off.append(c_rows)
            # not ``+=``: under tracing shapes are tensors and an in-place add would also
            # move the offsets already recorded
            g_rows = g_rows + geo_rows[-1].shape[0]
            c_rows = c_rows + corr_rows[-1].shape[0]
        geo_store = torch.cat(geo_rows) if num_levels > 1 else geo_rows[0]
        corr_store = torch.cat(corr_rows) if num_levels > 1 else corr_rows[0]
        # per (pixel, sampling): the store offset of its row block; samplings alternate
        # geometry / correlation, level by level. Built from device ops and shapes only (no
        # host-to-device copies, so CUDA-graph capture works; traced shapes stay symbolic).
        pix = torch.arange(n, device=device)
        starts = []
        for level in range(num_levels):
            starts.append(geo_off[level] + pix * (geo_len[level] + 2))
            starts.append(corr_off[level] + pix * (corr_len[level] + 2))
        row_start = torch.stack(starts, dim=1).unsqueeze(-1)                         # (N, 2L, 1) long
        j = torch.arange(2 * num_levels, device=device)
        is_corr = (j % 2 == 1).view(1, -1)
        scale = torch.exp2(-torch.div(j, 2, rounding_mode="floor").float()).view(1, -1)
        full = is_corr.float() * (corr_len[0] - geo_len[0]) + geo_len[0]
        lengths = torch.floor(full * scale)                                           # D_l or W2_l
        coords = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, w).expand(b, h, w)
        return LookupTables(
            geo_store=geo_store, corr_store=corr_store, row_start=row_start, is_corr=is_corr, scale=scale,
            upper=(lengths + 1.0).unsqueeze(-1), clamp_hi=lengths + (radius + 2.0),
            taps=torch.arange(2 * radius + 2, device=device, dtype=torch.float32), coords=coords.reshape(n, 1))


class LookupRows(NamedTuple):
    """Where one iteration's lookup reads (:func:`lookup_rows`): store rows and blend fractions."""

    geo_idx: torch.Tensor       # (N * L * (2r+2),) long: geometry store rows, (pixel, level, tap)-major
    corr_idx: torch.Tensor      # (N * L * (2r+2),) long: correlation store entries, same order
    geo_frac: torch.Tensor      # (N, L, 1, 1) fp32: the taps' shared fractional part, geometry
    corr_frac: torch.Tensor     # (N, L, 1) fp32: the same, correlation


def lookup_rows(tables: LookupTables, disp: torch.Tensor) -> LookupRows:
    """The store rows and blend fractions of the taps around ``disp`` (B, 1, H, W)."""
    n = disp.numel()
    r = (tables.taps.shape[0] - 2) // 2
    with torch.autocast(disp.device.type, enabled=False):
        d = disp.float().reshape(n, 1)
        # centres: geometry at d / 2^l, correlation at (x - d) / 2^l  -> (N, 2L)
        centre = torch.where(tables.is_corr, tables.coords - d, d) * tables.scale
        # a non-finite disparity (a diverged run) samples zeros instead of indexing out of range,
        # which would kill the process (a CUDA device assert) before the NaN guard can report it
        centre = torch.nan_to_num(centre, nan=-(r + 2.0), posinf=1e9, neginf=-1e9)
        centre = torch.minimum(centre.clamp(min=-(r + 2.0)), tables.clamp_hi)   # far out: all zeros
        base = torch.floor(centre)
        frac = (centre - base).unsqueeze(-1)                                    # (N, 2L, 1)
        pos = (base.unsqueeze(-1) + (1.0 - r)) + tables.taps                    # +1: leading zero pad
        pos = torch.minimum(pos.clamp(min=0.0), tables.upper).long()
        index = tables.row_start + pos                                          # (N, 2L, 2r+2)
        return LookupRows(geo_idx=index[:, 0::2].reshape(-1), corr_idx=index[:, 1::2].reshape(-1),
                          # contiguous: the Triton kernels read them as (N, L) without a copy
                          geo_frac=frac[:, 0::2].contiguous().unsqueeze(-1), corr_frac=frac[:, 1::2].contiguous())


def sample_lookup(tables: LookupTables, disp: torch.Tensor, *, channels_last: bool = True,
                  pad_channels: int = 0, rows: LookupRows | None = None) -> torch.Tensor:
    """Sample the pyramids of ``tables`` around ``disp`` (B, 1, H, W); returns (B, C_out, H, W) fp32.

    The result is channels_last in memory (free); ``channels_last=False`` returns a contiguous
    NCHW copy for models that run in the default layout. ``pad_channels`` zero channels are
    appended (channel-padded networks, :mod:`~skillbank.runtime.networks.speed.channel_padding`). ``rows``: the
    :func:`lookup_rows` of ``disp`` when the caller has them already.
    """
    b, _, h, w = disp.shape
    n = b * h * w
    if rows is None:
        rows = lookup_rows(tables, disp)
    levels = rows.geo_frac.shape[1]
    taps = tables.taps.shape[0]
    c = tables.geo_store.shape[1]
    with torch.autocast(disp.device.type, enabled=False):
        gv = tables.geo_store.index_select(0, rows.geo_idx).view(n, levels, taps, c).float()
        cv = tables.corr_store.index_select(0, rows.corr_idx).view(n, levels, taps)
        gf, cf = rows.geo_frac, rows.corr_frac
        geo = gv[:, :, :-1] * (1.0 - gf) + gv[:, :, 1:] * gf                    # (N, L, 2r+1, C)
        corr = cv[:, :, :-1] * (1.0 - cf) + cv[:, :, 1:] * cf                   # (N, L, 2r+1)
        geo = geo.transpose(2, 3).reshape(n, levels, c * (taps - 1))
        feat = torch.cat([geo, corr], dim=2).reshape(n, -1)
        if pad_channels:
            feat = torch.cat([feat, feat.new_zeros(n, pad_channels)], dim=1)
        feat = feat.reshape(b, h, w, -1).permute(0, 3, 1, 2)
        return feat if channels_last else feat.contiguous()


def add_lookup_grad_(grad_feat: torch.Tensor, rows: LookupRows, geo_grad: torch.Tensor,
                     corr_grad: torch.Tensor) -> None:
    """Add the adjoint of :func:`sample_lookup` at ``rows`` for ``grad_feat`` (the gradient of
    its (B, C_out, H, W) result) into ``geo_grad`` (the geometry store's shape) and ``corr_grad``
    (the correlation store's), in place.

    A gather's adjoint touches only the rows it read. Within one lookup every store row is read
    by at most one (pixel, level, tap), except the zero pad rows that clamped taps share, so the
    rows are read, added to and written back without atomics; a pad row's value is then
    arbitrary, and nothing reads it (the pads are not part of the volume). Blends in fp32, one
    rounding into the buffers' dtype.
    """
    n = rows.geo_frac.shape[0]
    levels = rows.geo_frac.shape[1]
    taps = rows.geo_idx.shape[0] // (n * levels)
    c = geo_grad.shape[1]
    with torch.autocast(grad_feat.device.type, enabled=False):
        g = grad_feat.permute(0, 2, 3, 1).reshape(n, -1)[:, :levels * (c + 1) * (taps - 1)].float()
        g = g.view(n, levels, (c + 1) * (taps - 1))
        g_geo = g[:, :, :c * (taps - 1)].reshape(n, levels, c, taps - 1).transpose(2, 3)   # (N, L, 2r+1, C)
        g_corr = g[:, :, c * (taps - 1):]                                                   # (N, L, 2r+1)
        gf, cf = rows.geo_frac, rows.corr_frac
        # tap k blends entries k (weight 1 - f) and k + 1 (weight f): entry j gets both neighbours' share
        geo_rows = F.pad(g_geo * (1.0 - gf), (0, 0, 0, 1)) + F.pad(g_geo * gf, (0, 0, 1, 0))
        corr_rows = F.pad(g_corr * (1.0 - cf), (0, 1)) + F.pad(g_corr * cf, (1, 0))
        geo_new = geo_grad.index_select(0, rows.geo_idx).float() + geo_rows.reshape(-1, c)
        corr_new = corr_grad.index_select(0, rows.corr_idx).float() + corr_rows.reshape(-1)
        geo_grad.index_put_((rows.geo_idx,), geo_new.to(geo_grad.dtype))
        corr_grad.index_put_((rows.corr_idx,), corr_new.to(corr_grad.dtype))


class GeoEncodingLookup:
    """Pyramids of the filtered cost volume and the all-pairs correlation, sampled per iteration.

    Built once per forward pass (:func:`build_lookup_tables` holds every allocation that does not
    depend on the current disparity), then called once per refinement iteration
    (:func:`sample_lookup`).

    Storage: every level of the geometry volume is a block of rows of ``C`` values, one row per
    (pixel, disparity), zero-padded by one disparity at both ends; all levels live in one row
    store. The correlation levels live the same way in one scalar store. A clamped index then
    lands on a zero exactly where ``grid_sample`` (zeros padding) reads outside the volume.

    Sampling: the ``2r+1`` taps around a centre ``c`` are ``c - r .. c + r``; they share one
    fractional part, so ``2r+2`` consecutive entries from ``floor(c) - r`` are gathered and
    blended pairwise. The four centres (geometry and correlation, per level) go through one
    index computation and two gathers per iteration.

    Output channels per level: ``C * (2r+1)`` geometry taps (channel-major, tap-minor) then
    ``2r+1`` correlation taps; levels are concatenated: for bp2 ``2 * (28 * 9 + 9) = 522``. The
    result is (B, H, W, C) permuted to (B, C, H, W), which is already channels_last in memory.
    A non-finite disparity (a diverged run) samples zeros rather than indexing out of range, so the
    divergence reaches the loss and its NaN guard instead of a device-side assert.
    The geometry store keeps the volume's dtype (fp32 in fp32 runs; bf16 under bf16 autocast,
    halving the gather traffic); the correlation and all interpolation arithmetic are fp32.
    """

    def __init__(self, left: torch.Tensor, right: torch.Tensor, geo_volume: torch.Tensor,
                 num_levels: int, radius: int) -> None:
        self.tables = build_lookup_tables(left, right, geo_volume, num_levels, radius)

    def __call__(self, disp: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
        """Sample around ``disp`` (B, 1, H, W): see :func:`sample_lookup`."""
        return sample_lookup(self.tables, disp, channels_last=channels_last)
