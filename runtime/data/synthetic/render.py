"""Render a scene into a rectified pair with exact left-view disparity.

Each view is a z-buffer over the scene's layers, evaluated inside each layer's bounding box only:

* left view: pixel (x, y) of a layer shows its texture at x, disparity ``d(x, y)``;
* right view: pixel (x_r, y) shows the surface point whose left coordinate solves ``x_l - d(x_l, y) =
  x_r`` (:meth:`Layer.left_x`: closed form for planes, a contraction for curved layers), so the right
  view is the exact forward warp of every layer, by inverse mapping with no holes;
* the nearest layer (largest d) wins a pixel, in either view; the left-view GT is the winner's d.

``nocc`` is 255 where the match ``x - d`` lies inside the right image and the right view shows the same
surface there (``|d_R - d_L| < 1``), else 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from skillbank.runtime.data.synthetic.photometric import finish_view, sample_highlights
from skillbank.runtime.data.synthetic.scene import Layer, make_scene
from skillbank.runtime.data.synthetic.textures import BANK_SIZE, TextureBank, texture_bank

__all__ = ["SyntheticPair", "render_stereo_pair"]


@dataclass
class SyntheticPair:
    """One rendered pair: RGB uint8 views, float32 left/right-view disparity, uint8 nocc (255 = visible)."""

    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray
    disparity_right: np.ndarray
    nocc: np.ndarray


def _render_view(layers: list[Layer], bank: TextureBank, h: int, w: int, right: bool) -> tuple[np.ndarray, np.ndarray]:
    image = np.zeros((h, w, 3), np.uint8)
    zbuf = np.zeros((h, w), np.float32)
    for layer in sorted(layers, key=lambda L: -L.d_range[1]):  # nearest first: far layers paint less
        x0, y0, x1, y1 = layer.bbox  # on the left view's canvas, which extends right of the image
        if right:  # the layer's right-view footprint: shifted left by its disparity range
            lo, hi = layer.d_range
            x0, x1 = max(int(np.floor(x0 - hi)) - 1, 0), min(int(np.ceil(x1 - lo)) + 1, w)
        else:
            x1 = min(x1, w)
        if x1 <= x0:
            continue
        ys = np.arange(y0, y1, dtype=np.float32)[:, None]
        xs = np.arange(x0, x1, dtype=np.float32)[None, :]
        # left-view x of every pixel, as a row (1, W) plus a per-row offset (H, 1) where it separates
        # (planes), else the full map (curved layers in the right view)
        xl, x_col = layer.left_x_terms(xs, ys) if right else (xs, None)
        d = layer.disparity(xl, ys, x_col)  # (H, W) float32
        paint = d > zbuf[y0:y1, x0:x1]
        region = layer.mask(xl, ys, d, x_col)
        if region is not None:
            paint &= region
        c0, r0, cw, rh = cv2.boundingRect(paint.view(np.uint8))  # texture only where it is painted
        if cw == 0:
            continue
        paint, d = paint[r0 : r0 + rh, c0 : c0 + cw].view(np.uint8), d[r0 : r0 + rh, c0 : c0 + cw]
        xl = xl[:, c0 : c0 + cw] if xl.shape[0] == 1 else xl[r0 : r0 + rh, c0 : c0 + cw]
        u, v = layer.tex_coords(xl, ys[r0 : r0 + rh], d, None if x_col is None else x_col[r0 : r0 + rh])
        # fixed-point texel coordinates (1/32 px, what remap uses internally), the integer texel wrapped
        # into the tile: the textures repeat, and remap's fast in-range path is 2-3x its wrapping one
        xy, frac = cv2.convertMaps(u, v, cv2.CV_16SC2)
        np.bitwise_and(xy, BANK_SIZE - 1, out=xy)
        colour = cv2.remap(bank.tiles[layer.texture], xy, frac, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        colour = cv2.transform(colour, layer.colour_matrix())
        y0, x0 = y0 + r0, x0 + c0
        cv2.copyTo(colour, paint, image[y0 : y0 + rh, x0 : x0 + cw])  # in place, through the views
        cv2.copyTo(np.ascontiguousarray(d), paint, zbuf[y0 : y0 + rh, x0 : x0 + cw])
    return image, zbuf


def render_stereo_pair(
    rng: np.random.Generator, height: int, width: int, max_disparity: float, config=None
) -> SyntheticPair:
    """Render one rectified pair; every GT disparity lies in (0, max_disparity).

    ``config`` holds the scene and photometry knobs (:class:`skillbank.specs.SyntheticConfig`, the
    ``convert.synthetic`` spec section; None = its defaults). The texture bank is keyed by
    ``config.texture_seed``, so equal seeds give identical bytes in any process.
    """
    if height < 8 or width < 8 or max_disparity < 2:
        raise ValueError(f"need height, width >= 8 and max_disparity >= 2, got {height}x{width}, {max_disparity}")
    if config is None:
        from skillbank.specs import SyntheticConfig

        config = SyntheticConfig()
    bank = texture_bank(int(config.texture_seed))
    layers = make_scene(rng, height, width, float(max_disparity), config, bank)
    left, disp = _render_view(layers, bank, height, width, right=False)
    right, disp_right = _render_view(layers, bank, height, width, right=True)
    xr = np.arange(width, dtype=np.float32)[None, :] - disp
    rows = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None], disp.shape)
    # the right view's disparity at the nearest pixel of each match (clamped to the image: the xr >= 0
    # test below rejects what lies left of it)
    seen = cv2.remap(disp_right, xr, np.ascontiguousarray(rows), cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    nocc = ((xr >= 0) & (np.abs(seen - disp) < 1.0)).view(np.uint8) * np.uint8(255)
    spots = sample_highlights(rng, height, width, config)
    moved = []
    for x, y, sigma, amp in spots:  # near the same surface point in the right view, shifted by the viewpoint
        d = float(disp[int(np.clip(y, 0, height - 1)), int(np.clip(x, 0, width - 1))])
        moved.append((x - d + float(rng.normal(0, 2 * sigma)), y + float(rng.normal(0, 0.5 * sigma)), sigma, amp))
    return SyntheticPair(
        finish_view(rng, left, config, spots, right=False),
        finish_view(rng, right, config, moved, right=True),
        disp,
        disp_right,
        nocc,
    )
