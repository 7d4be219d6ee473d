"""Stereo cost volumes and the gather-based disparity lookup.

Conventions: features are (B, C, H, W) at 1/4 resolution, ``D`` disparity levels, and the
right-image match of left pixel ``w`` at disparity ``d`` is ``w - d`` (zero when ``w < d``).

- :func:`build_gwc_volume`: group-wise correlation (B, G, D, H, W). Features are L2-normalised
  per group (cosine similarity) in fp32 when ``normalize``; built from one batched matmul
  (all pairs along each row) and one 1-D index_select that picks the ``w - d`` band.
- :func:`build_concat_volume`: left features repeated over D next to the shifted right
  features (B, 2C, D, H, W), again with one index_select.
- :class:`GeoEncodingLookup`: the per-iteration lookup of the refinement loop. It keeps
  ``corr_levels`` pyramids of the filtered volume (C channels over D) and of the all-pairs
  cosine correlation (1 channel over W) and samples ``2r+1`` taps around the current
  disparity with 1-D linear interpolation and zero padding: exactly what ``grid_sample``
  with ``align_corners=True`` computes on these volumes, implemented with one row gather per
  table (no GridSample, export friendly, no host syncs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _band_index(width: int, max_disp: int, row: int, zero_col: int, device: torch.device) -> torch.Tensor:
    """Flat index ``[d, w] -> w * row + (w - d)`` (``zero_col`` where ``w < d``), shape (D*W,)."""
    w = torch.arange(width, device=device).view(1, width)
    d = torch.arange(max_disp, device=device).view(max_disp, 1)
    src = w - d
    col = torch.where(src >= 0, src, torch.full_like(src, zero_col))
    return (w * row + col).reshape(-1)


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
        # all pairs along each image row: (B, G, H, W, W)
        pairs = torch.matmul(lf.permute(0, 1, 3, 4, 2), rf.permute(0, 1, 3, 2, 4))
        pairs = F.pad(pairs, (0, 1))                                # a zero column at index W
        index = _band_index(w, max_disp, w + 1, w, left.device)
        vol = pairs.reshape(b, num_groups, h, w * (w + 1)).index_select(3, index)
        return vol.reshape(b, num_groups, h, max_disp, w).permute(0, 1, 3, 2, 4)


def build_concat_volume(left: torch.Tensor, right: torch.Tensor, max_disp: int) -> torch.Tensor:
    """Concatenation volume (B, 2C, D, H, W): left features, then right features shifted by d."""
    b, c, h, w = left.shape
    right = F.pad(right, (0, 1))                                    # zero column at index W
    index = _band_index(w, max_disp, 0, w, left.device)
    shifted = right.index_select(3, index).reshape(b, c, h, max_disp, w).permute(0, 1, 3, 2, 4)
    return torch.cat((left.unsqueeze(2).expand(b, c, max_disp, h, w), shifted), dim=1)


def all_pairs_correlation(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Cosine correlation of every left pixel with every right pixel of its row: (B, H, W, W), fp32."""
    with torch.autocast(left.device.type, enabled=False):
        lf = F.normalize(left.float(), dim=1)
        rf = F.normalize(right.float(), dim=1)
        return torch.matmul(lf.permute(0, 2, 3, 1), rf.permute(0, 2, 1, 3))


def halve_last_dim(x: torch.Tensor) -> torch.Tensor:
    """Average adjacent pairs on the last axis (a [1, 2] average pool; an odd tail is dropped)."""
    return 0.5 * (x[..., 0:-1:2] + x[..., 1::2])


class GeoEncodingLookup:
    """Pyramids of the filtered cost volume and the all-pairs correlation, sampled per iteration.

    Built once per forward pass (``__init__`` holds every allocation that does not depend on the
    current disparity), then called once per refinement iteration.

    Each table is stored zero-padded by one entry at both ends of its sampling axis, so a
    clamped index lands on a zero exactly where ``grid_sample`` (zeros padding) would read
    outside the volume. The ``2r+1`` taps around a centre ``c`` are ``c - r .. c + r``; they
    share one fractional part, so ``2r+2`` consecutive entries from ``floor(c) - r`` are
    gathered and blended pairwise.

    Output channels per level: ``volume_channels * (2r+1)`` geometry taps (channel-major,
    tap-minor) then ``2r+1`` correlation taps; levels are concatenated: for bp2
    ``2 * (28 * 9 + 9) = 522``. The result is (B, H, W, C) permuted to (B, C, H, W), which is
    already channels_last in memory.
    """

    def __init__(self, left: torch.Tensor, right: torch.Tensor, geo_volume: torch.Tensor,
                 num_levels: int, radius: int) -> None:
        b, c, d, h, w = geo_volume.shape
        self.shape = (b, h, w)
        self.radius = radius
        self.num_levels = num_levels
        with torch.autocast(geo_volume.device.type, enabled=False):
            geo = geo_volume.float().permute(0, 3, 4, 2, 1).reshape(b * h * w, d, c)   # (N, D, C)
            corr = all_pairs_correlation(left, right).reshape(b * h * w, -1)          # (N, W2)
            self.geo_tables: list[torch.Tensor] = []
            self.corr_tables: list[torch.Tensor] = []
            for level in range(num_levels):
                if level > 0:
                    geo = halve_last_dim(geo.transpose(1, 2)).transpose(1, 2)
                    corr = halve_last_dim(corr)
                self.geo_tables.append(F.pad(geo, (0, 0, 1, 1)))       # (N, D_l + 2, C)
                self.corr_tables.append(F.pad(corr, (1, 1)))           # (N, W2_l + 2)
            n = b * h * w
            self.taps = torch.arange(2 * radius + 2, device=geo.device, dtype=torch.float32)
            self.row = torch.arange(n, device=geo.device).view(n, 1)
            self.coords = torch.arange(w, device=geo.device, dtype=torch.float32).view(1, 1, w).expand(b, h, w)
            self.coords = self.coords.reshape(n, 1)

    def _sample(self, table: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        """Linear taps ``centre + k`` (k = -r..r) of each row of a padded table.

        table: (N, L + 2[, C]); centre: (N, 1). Returns (N, 2r+1[, C]).
        """
        length = table.shape[1] - 2
        r = self.radius
        centre = centre.clamp(-(r + 2.0), length + r + 2.0)   # far outside: every tap reads a zero
        base = torch.floor(centre)
        frac = centre - base
        pos = (base - r + 1.0) + self.taps                     # +1: the leading zero pad
        pos = pos.clamp(0, length + 1).long()                  # (N, 2r+2)
        flat = (self.row * (length + 2) + pos).reshape(-1)
        if table.dim() == 3:
            vals = table.reshape(-1, table.shape[2]).index_select(0, flat).view(-1, 2 * r + 2, table.shape[2])
            frac = frac.unsqueeze(-1)
        else:
            vals = table.reshape(-1).index_select(0, flat).view(-1, 2 * r + 2)
        return vals[:, :-1] * (1.0 - frac) + vals[:, 1:] * frac

    def __call__(self, disp: torch.Tensor) -> torch.Tensor:
        """Sample the pyramids around ``disp`` (B, 1, H, W) fp32; returns (B, C_out, H, W) fp32."""
        b, h, w = self.shape
        n = b * h * w
        with torch.autocast(disp.device.type, enabled=False):
            d = disp.float().reshape(n, 1)
            out = []
            for level in range(self.num_levels):
                scale = 1.0 / (2 ** level)
                geo = self._sample(self.geo_tables[level], d * scale)             # (N, 2r+1, C)
                out.append(geo.transpose(1, 2).reshape(n, -1))                    # channel-major
                out.append(self._sample(self.corr_tables[level], (self.coords - d) * scale))
            feat = torch.cat(out, dim=1)
            return feat.view(b, h, w, -1).permute(0, 3, 1, 2)
