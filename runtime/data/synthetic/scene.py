"""Scene geometry: layers with exact disparity fields, sampled to look like the world's geometry.

A scene is a list of :class:`Layer`. Each has a region (where it exists, in left-view coordinates), a
disparity field ``d(x, y) = a + b x + c y + bump(x, y)`` and a texture map. What a scene holds:

* a ground plane receding to a horizon (``d`` grows linearly from 0 at the horizon row, with a small
  roll), textured in perspective (texture coordinates ``~ x / d`` and ``1 / d``);
* sky or far field above it at ~0 disparity (0.05..0.6 px), nearly untextured;
* a far background wall when there is no ground (indoor-like), far-field blocks on the horizon;
* objects: rotated rectangles and discs, fronto-parallel, slanted at any orientation (``|dd/dx|`` up
  to ``max_slant``), or curved (a dome or a cylinder bulge); half of them standing on the ground at the
  disparity of the ground where they touch it, sized with their nearness;
* thin structures (poles and wires, 1..4 px wide);
* heavy occlusion from the object count, repeated and untextured surfaces from the texture bank.

Curved layers keep ``|d bump / dx| <= 0.3`` so the right view's inverse map ``x_l = x_r + d(x_l, y)``
is a contraction: a dozen fixed-point steps from the plane's exact solution reach 1e-5 px.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skillbank.runtime.data.synthetic.textures import BANK_SIZE, TextureBank

__all__ = ["Layer", "make_scene"]

_FIXED_POINT_STEPS = 12


@dataclass
class Layer:
    """One surface: region, disparity field and texture map (left-view coordinates)."""

    a: float
    b: float = 0.0
    c: float = 0.0
    # region: "all" | "below" (ground: d > 0) | "box" (rotated rectangle) | "disc"
    region: str = "all"
    geom: tuple[float, ...] = ()  # box: cx, cy, half_len, half_wid, angle; disc: cx, cy, r
    bump: tuple[float, ...] = ()  # (kind, cx, cy, r, amplitude): kind 0 dome, 1 vertical cyl, 2 horizontal cyl
    texture: int = 0
    # texture map u = s (cos t x + sin t y) + ou, v = s (-sin t x + cos t y) + ov; perspective: x/d, 1/d
    tex_affine: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    perspective: bool = False
    colour: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 0.0)  # per-channel gain, brightness offset
    bbox: tuple[int, int, int, int] = (0, 0, 0, 0)  # x0, y0, x1, y1 (left view, exclusive end)
    d_range: tuple[float, float] = (0.0, 0.0)
    extras: dict = field(default_factory=dict)

    # ---------------------------------------------------------------- disparity
    def bump_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
        if not self.bump:
            return 0.0
        kind, cx, cy, r, amp = self.bump
        if kind == 0:
            q = ((x - cx) ** 2 + (y - cy) ** 2) / (r * r)
        elif kind == 1:
            q = ((x - cx) / r) ** 2
        else:
            q = ((y - cy) / r) ** 2
        return amp * np.maximum(0.0, 1.0 - q)

    def disparity(self, x: np.ndarray, y: np.ndarray, x_col: np.ndarray | None = None) -> np.ndarray:
        """d at left-view (x + x_col, y); ``x_col`` (H, 1) is an optional per-row offset of x.

        With x a row (1, W) and y, x_col columns (H, 1), a plane costs one pass over (H, W)."""
        col = self.a + self.c * y if x_col is None else self.a + self.c * y + self.b * x_col
        d = np.add(self.b * x, col)
        if self.bump:
            d += self.bump_at(x if x_col is None else x + x_col, y)
        return d

    def left_x(self, x_right: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The left-view x of the surface point seen at right-view (x_right, y): x_l - d(x_l, y) = x_r."""
        base = x_right + self.a + self.c * y
        xl = base / (1.0 - self.b)
        if self.bump:
            for _ in range(_FIXED_POINT_STEPS):
                xl = (base + self.bump_at(xl, y)) / (1.0 - self.b)
        return xl

    def left_x_terms(self, x_right: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`left_x` as a row term plus a column term, ``x_l = row + col``, where it separates.

        A plane's inverse map is affine, ``x_l = (x_r + a + c y) / (1 - b)``: with x_right a row (1, W)
        and y a column (H, 1), both terms stay small and every per-pixel quantity downstream (d, the
        region test, texture coordinates) costs one pass. A curved layer returns the full map and None."""
        if self.bump:
            return self.left_x(x_right, y), None
        k = 1.0 / (1.0 - self.b)
        return x_right * k, (self.a + self.c * y) * k

    # ---------------------------------------------------------------- region
    def row_span(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A box's or disc's extent along each row ``y`` (H, 1): ``lo <= x <= hi``, empty where lo > hi.

        Both regions are convex, so each row meets them in one interval: two comparisons per pixel
        instead of rotating every pixel into the region's frame."""
        y = np.asarray(y, np.float64) - self.geom[1]
        if self.region == "disc":
            r = self.geom[2]
            with np.errstate(invalid="ignore"):
                half = np.sqrt(r * r - y * y)  # nan outside the disc's rows: both comparisons fail
            return self.geom[0] - half, self.geom[0] + half
        cx, _, hl, hw, t = self.geom
        cos, sin = np.cos(t), np.sin(t)
        lo, hi = np.full(y.shape, -np.inf), np.full(y.shape, np.inf)
        # |(x - cx) cos + y sin| <= hl and |-(x - cx) sin + y cos| <= hw, each an interval of x - cx
        for along, offset, half in ((cos, y * sin, hl), (-sin, y * cos, hw)):
            if abs(along) < 1e-12:  # the constraint does not depend on x: the whole row or none of it
                lo = np.where(np.abs(offset) <= half, lo, np.inf)
                continue
            a, b = (-half - offset) / along, (half - offset) / along
            lo, hi = np.maximum(lo, np.minimum(a, b)), np.minimum(hi, np.maximum(a, b))
        return cx + lo, cx + hi

    def mask(self, x: np.ndarray, y: np.ndarray, d: np.ndarray, x_col: np.ndarray | None = None) -> np.ndarray | None:
        """Where the layer exists at left-view (x + x_col, y) with disparity d; None = everywhere."""
        if self.region == "below":
            return d > 0
        if self.region == "all":
            return None
        if self.region in ("box", "disc"):
            lo, hi = self.row_span(y)
            if x_col is not None:
                lo, hi = lo - x_col, hi - x_col
            inside = x >= lo.astype(np.float32)
            inside &= x <= hi.astype(np.float32)
            return inside
        raise ValueError(f"unknown region {self.region!r}")

    def colour_matrix(self) -> np.ndarray:
        """The layer's per-channel gain and brightness offset as a 3x4 ``cv2.transform`` matrix (one pass
        over 8-bit RGB, rounded and saturated)."""
        gr, gg, gb, offset = self.colour
        m = np.zeros((3, 4), np.float32)
        m[0, 0], m[1, 1], m[2, 2], m[:, 3] = gr, gg, gb, offset
        return m

    # ---------------------------------------------------------------- texture coordinates
    def tex_coords(
        self, x: np.ndarray, y: np.ndarray, d: np.ndarray, x_col: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Texel coordinates (float32, d's shape, C-contiguous) of left-view points (x + x_col, y) with
        disparity d."""
        s, t, ou, ov = self.tex_affine
        cs, sn = np.float32(s * np.cos(t)), np.float32(s * np.sin(t))
        if self.perspective:  # ground-plane coordinates: lateral X ~ x / d, depth Z ~ 1 / d
            inv = np.maximum(d, np.float32(0.05))
            np.divide(np.float32(self.extras["k"]), inv, out=inv)
            x = np.multiply((x if x_col is None else x + x_col) - np.float32(self.extras["cx"]), inv)
            inv *= np.float32(4.0)
            u = cs * x
            u += sn * inv
            u += np.float32(ou)
            v = cs * inv
            v -= sn * x
            v += np.float32(ov)
            for c in (u, v):  # near the horizon far beyond the int16 fixed-point range: wrap into the tile
                c -= np.floor(c * np.float32(1.0 / BANK_SIZE)) * np.float32(BANK_SIZE)
            return u, v
        # affine: each coordinate is one pass, x against a per-row term (x a row (1, W) where it separates)
        x_col = np.float32(0.0) if x_col is None else x_col
        u = np.add(cs * x, cs * x_col + sn * y + np.float32(ou), dtype=np.float32)
        v = np.subtract(cs * y - sn * x_col + np.float32(ov), sn * x, dtype=np.float32)
        if u.shape != d.shape:  # a fronto-parallel layer seen through a single row or column
            u, v = np.broadcast_to(u, d.shape).copy(), np.broadcast_to(v, d.shape).copy()
        return u, v


def _finish(layer: Layer, h: int, w: int, max_disparity: float) -> Layer | None:
    """Set bbox and disparity range; None if the layer misses the views.

    The bbox is in left-view coordinates on the canvas ``[0, w + max_disparity)``: a surface right of
    the left image still shows in the right view (at ``x - d``)."""
    if layer.region == "box":
        cx, cy, hl, hw, t = layer.geom
        ex = abs(hl * np.cos(t)) + abs(hw * np.sin(t))
        ey = abs(hl * np.sin(t)) + abs(hw * np.cos(t))
        x0, y0, x1, y1 = cx - ex, cy - ey, cx + ex, cy + ey
    elif layer.region == "disc":
        cx, cy, r = layer.geom
        x0, y0, x1, y1 = cx - r, cy - r, cx + r, cy + r
    else:
        x0, y0, x1, y1 = 0, 0, w + max_disparity, h
    x0, y0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    x1, y1 = min(int(np.ceil(x1)) + 1, w + int(np.ceil(max_disparity)) + 1), min(int(np.ceil(y1)) + 1, h)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    corners = [layer.a + layer.b * x + layer.c * y for x in (x0, x1) for y in (y0, y1)]
    lo, hi = min(corners), max(corners)
    if layer.bump:
        amp = layer.bump[4]
        lo, hi = lo + min(amp, 0.0), hi + max(amp, 0.0)
    layer.bbox, layer.d_range = (x0, y0, x1, y1), (lo, hi)
    return layer


def _texture_for(rng: np.random.Generator, bank: TextureBank, cfg, scale: float = 1.0) -> dict:
    u = rng.random()
    if u < cfg.untextured_prob:
        kind = "flat"
    elif u < cfg.untextured_prob + cfg.pattern_prob:
        kind = "pattern"
    elif u < cfg.untextured_prob + cfg.pattern_prob + cfg.photo_prob:
        kind = "photo"
    else:
        kind = "pink"
    s = float(np.exp(rng.uniform(np.log(0.35), np.log(2.5)))) / scale
    gain = rng.uniform(0.6, 1.3, size=3) * rng.uniform(0.8, 1.2)
    return {
        "texture": bank.index_of(rng, kind),
        "tex_affine": (s, float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0, 512)), float(rng.uniform(0, 512))),
        "colour": (*map(float, gain), float(rng.uniform(-30, 30))),
    }


def _slanted(rng: np.random.Generator, d0: float, x0: float, y0: float, cfg, d_lo: float) -> tuple[float, float, float]:
    """Plane through (x0, y0, d0) with a random orientation, |dd/dx| <= max_slant."""
    if rng.random() >= cfg.slanted_prob:
        return d0, 0.0, 0.0
    b = float(rng.uniform(-cfg.max_slant, cfg.max_slant)) * float(rng.random())
    c = float(rng.uniform(-cfg.max_slant, cfg.max_slant)) * float(rng.random())
    # keep the disparity change over ~200 px moderate relative to d0 so the plane stays in front of d_lo
    lim = max(d0 - d_lo, 0.5) / 200.0
    b, c = float(np.clip(b, -lim * 4, lim * 4)), float(np.clip(c, -lim * 4, lim * 4))
    return d0 - b * x0 - c * y0, b, c


def make_scene(rng: np.random.Generator, h: int, w: int, max_disparity: float, cfg, bank: TextureBank) -> list[Layer]:
    """Sample one scene's layers (see the module docstring); every d lies in (0, max_disparity)."""
    lo_s, hi_s = cfg.disparity_scale
    d_max = float(max_disparity) * float(rng.uniform(lo_s, hi_s))  # what the nearest surfaces reach
    d_max = max(d_max, 2.0)
    layers: list[Layer] = []
    ground = rng.random() < cfg.ground_prob
    sky_d = float(rng.uniform(0.05, 0.6))
    horizon = None
    if ground:
        horizon = float(rng.uniform(-0.1, 0.6)) * h
        bottom = float(rng.uniform(0.35, 1.0)) * d_max
        c = bottom / max(h - horizon, 1.0)
        roll = float(rng.normal(0.0, 0.03))  # horizon tilt: d = c (y - horizon - roll (x - w/2))
        g = Layer(
            a=-c * (horizon - roll * w / 2),
            b=-c * roll,
            c=c,
            region="below",
            perspective=True,
            **_texture_for(rng, bank, cfg),
            extras={"cx": w / 2, "k": float(rng.uniform(3, 30))},
        )
        layers.append(g)
        if rng.random() < cfg.sky_prob:
            sky = _texture_for(rng, bank, cfg)
            sky["texture"] = bank.index_of(rng, "flat" if rng.random() < 0.7 else "pink")
            layers.append(Layer(a=sky_d, **sky))
        else:
            layers.append(Layer(a=sky_d * 4, **_texture_for(rng, bank, cfg)))
        for _ in range(int(rng.integers(0, 6))):  # far field on the horizon: buildings, hills, trees
            bw, bh = rng.uniform(0.05, 0.4) * w, rng.uniform(0.05, 0.35) * h
            cx = rng.uniform(0, w)
            layers.append(
                Layer(
                    a=float(rng.uniform(sky_d, max(sky_d * 1.01, min(8.0, 0.08 * d_max)))),
                    region="box",
                    geom=(cx, horizon - bh / 2 + 2, bw / 2, bh / 2, 0.0),
                    **_texture_for(rng, bank, cfg),
                )
            )
    else:  # a far wall, possibly slanted
        d_far = float(rng.uniform(0.02, 0.3)) * d_max
        a, b, c = _slanted(rng, d_far, w / 2, h / 2, cfg, d_far * 0.5)
        b, c = b * 0.3, c * 0.3
        corners = [a + b * x + c * y for x in (0, w + max_disparity) for y in (0, h)]
        if min(corners) < 0.05 or max(corners) > 0.5 * max_disparity:
            a, b, c = d_far, 0.0, 0.0  # the backdrop must cover every pixel of both views
        layers.append(Layer(a=a, b=b, c=c, **_texture_for(rng, bank, cfg)))

    d_floor = 0.1 * d_max
    lo_n, hi_n = cfg.objects
    for _ in range(int(rng.integers(lo_n, hi_n + 1))):
        standing = ground and rng.random() < cfg.standing_prob
        if standing:  # stands on the ground: its disparity is the ground's where it touches it
            y_b = float(rng.uniform(max(horizon, 0) + 2, h * 1.15))
            d0 = layers[0].c * (y_b - horizon)
            if not 0.5 < d0 < max_disparity * 0.98:
                continue
            size = d0 * float(rng.uniform(1.0, 6.0))  # nearer -> bigger
            hh, hw = size / 2, size * float(rng.uniform(0.2, 1.5)) / 2
            cx, cy = float(rng.uniform(-0.1, 1.1) * w), y_b - hh
        else:
            d0 = float(rng.uniform(d_floor, d_max))
            hh, hw = rng.uniform(0.04, 0.3) * h, rng.uniform(0.04, 0.3) * w
            cx, cy = float(rng.uniform(-0.1, 1.1) * w), float(rng.uniform(-0.1, 1.1) * h)
        a, b, c = _slanted(rng, d0, cx, cy, cfg, d_floor)
        disc = rng.random() < 0.35
        angle = float(rng.normal(0, 0.3)) if rng.random() < 0.4 else 0.0
        geom = (cx, cy, float(min(hh, hw))) if disc else (cx, cy, float(hw), float(hh), angle)
        bump: tuple[float, ...] = ()
        if rng.random() < cfg.curved_prob:
            kind = 0 if disc else int(rng.integers(1, 3))
            r = float(min(hh, hw)) if kind != 1 else float(hw)
            r = float(hh) if kind == 2 else r
            amp = float(rng.uniform(-0.3, 0.3)) * r * 0.6  # |d bump/dx| <= 2 |amp| / r <= 0.36
            amp = float(np.clip(amp, -0.4 * d0, 0.98 * max_disparity - d0 - 1))
            bump = (kind, cx, cy, r, amp)
            b, c, a = 0.0, 0.0, d0  # curved layers are not also slanted (keeps the map a contraction)
        layer = Layer(
            a=a,
            b=b,
            c=c,
            region="disc" if disc else "box",
            geom=geom,
            bump=bump,
            **_texture_for(rng, bank, cfg, scale=max(1.0, 60.0 / max(min(hh, hw), 1.0))),
        )
        layers.append(layer)
    lo_t, hi_t = cfg.thin_structures
    for _ in range(int(rng.integers(lo_t, hi_t + 1))):  # poles and wires
        d0 = float(rng.uniform(d_floor, d_max))
        width = float(rng.uniform(0.5, 2.0))
        length = float(rng.uniform(0.3, 1.2)) * (h if rng.random() < 0.6 else w)
        vertical = rng.random() < 0.6
        angle = float(rng.normal(np.pi / 2 if vertical else 0.0, 0.15))
        geom = (float(rng.uniform(0, w)), float(rng.uniform(0, h)), length / 2, width, angle)
        layers.append(Layer(a=d0, region="box", geom=geom, **_texture_for(rng, bank, cfg)))

    out = []
    for layer in layers:
        done = _finish(layer, h, w, float(max_disparity))
        if done is None:
            continue
        lo, hi = done.d_range
        if done.region == "below" and hi >= 0.98 * max_disparity:  # roll pushed a corner out of range
            f = 0.98 * max_disparity / hi
            done.a, done.b, done.c, done.d_range = done.a * f, done.b * f, done.c * f, (lo * f, hi * f)
        elif done.region != "below" and (lo <= 0.02 or hi >= max_disparity):
            continue  # leaves the valid disparity range: drop rather than clip (GT stays exact)
        out.append(done)
    return out
