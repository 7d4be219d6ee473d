"""Procedural stereo pairs with EXACT dense disparity, for tests, demos and pre-training.

How a pair is made
------------------
A scene is a stack of layers: a textured background plane and 4-10 shapes (rectangles, discs,
slanted planes cut to a rectangle or disc). Layer ``k`` has a planar disparity field in left-view
coordinates ``d_k(x, y) = a + b x + c y`` (b = c = 0: fronto-parallel) and a texture drawn on a
canvas indexed by the left-view x (wider than the image so the right view never runs off it).

* Left view: each pixel (x, y) samples the canvas at x.
* Right view: a right pixel x_r sees the point whose left coordinate x_l satisfies
  x_l - d(x_l, y) = x_r, i.e. ``x_l = (x_r + a + c y) / (1 - b)`` - exact for planes, so the right
  view is the forward warp x_right = x_left - d of every layer, evaluated by inverse mapping
  (``cv2.remap``, bilinear) with no holes or splatting error.
* Occlusions: a per-pixel z-buffer in each view keeps the layer with the largest disparity
  (nearest), painting layers from far to near.
* The left-view GT is the winning layer's d at each pixel (exact). ``nocc`` is 255 where the match
  x - d lies inside the right image and the right view shows the same surface there (|d_R - d_L| < 1),
  else 0.
* Per-view photometric differences: gain, bias, gamma and Gaussian noise drawn independently for
  each view, so matching must be robust to them.

Textures mix multi-scale value noise (colour), stripes at random angles and periods, checkerboards
and fine grain, so every layer has structure at many scales (a network can learn to match it).

Reproducible: pair ``i`` uses ``numpy.random.default_rng([seed, i])``; same seed -> identical bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .io import atomic_write_bytes, write_pfm, write_png

__all__ = ["SyntheticPair", "render_stereo_pair", "generate_synthetic_stereo"]


@dataclass
class SyntheticPair:
    """One rendered pair: RGB uint8 views, float32 left/right-view disparity, uint8 nocc (255 = visible)."""

    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray
    disparity_right: np.ndarray
    nocc: np.ndarray


# ------------------------------------------------------------------------------------------- textures
def _value_noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Multi-scale colour value noise in 0..1, (h, w, 3) float32."""
    out = np.zeros((h, w, 3), np.float32)
    total = 0.0
    for cell in (64, 24, 8, 3):
        amp = float(rng.uniform(0.3, 1.0))
        grid = rng.random((h // cell + 2, w // cell + 2, 3), dtype=np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC if cell > 3 else cv2.INTER_LINEAR)
        total += amp
    return np.clip(out / total, 0, 1)


def _pattern(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Stripes or checkerboard at a random angle and period, 0..1 (h, w) float32."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    u = x * np.cos(theta) + y * np.sin(theta)
    v = -x * np.sin(theta) + y * np.cos(theta)
    period = float(rng.uniform(4, 40))
    if rng.random() < 0.5:
        return 0.5 + 0.5 * np.sin(2 * np.pi * u / period)
    return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A rich colour texture in 0..255, (h, w, 3) float32."""
    base = _value_noise(rng, h, w)
    if rng.random() < 0.6:
        colours = rng.random((2, 3)).astype(np.float32)
        p = _pattern(rng, h, w)[:, :, None]
        mix = float(rng.uniform(0.3, 0.8))
        base = (1 - mix) * base + mix * (colours[0] * p + colours[1] * (1 - p))
    tint = rng.uniform(0.5, 1.0, size=3).astype(np.float32)
    grain = rng.standard_normal(size=(h, w, 1), dtype=np.float32) * np.float32(0.04)
    return np.clip((base * tint + grain) * 255.0, 0, 255)


# --------------------------------------------------------------------------------------------- layers
@dataclass
class _Layer:
    a: float
    b: float
    c: float
    shape: str  # "plane" | "rect" | "disc"
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 (rect) or cx, cy, r, 0 (disc)
    texture: np.ndarray  # covers canvas x in [x_off, x_off + width), y in [y_off, y_off + height)
    x_off: int
    y_off: int
    canvas_w: int

    def disparity(self, xl: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.a + self.b * xl + self.c * y

    def mask(self, xl: np.ndarray, y: np.ndarray) -> np.ndarray:
        inside = (xl >= 0) & (xl <= self.canvas_w - 1)
        if self.shape == "rect":
            x0, y0, x1, y1 = self.box
            return inside & (xl >= x0) & (xl < x1) & (y >= y0) & (y < y1)
        if self.shape == "disc":
            cx, cy, r, _ = self.box
            return inside & ((xl - cx) ** 2 + (y - cy) ** 2 < r * r)
        return inside


def _plane(rng: np.random.Generator, lo: float, hi: float, h: int, canvas_w: int, max_slant: float) -> tuple:
    """Random plane a + b x + c y whose values over the canvas stay inside [lo, hi]."""
    for _ in range(20):
        a0 = rng.uniform(lo, hi)
        b = rng.uniform(-max_slant, max_slant) / canvas_w
        c = rng.uniform(-max_slant, max_slant) / h
        a = a0 - b * canvas_w / 2 - c * h / 2
        corners = [a + b * x + c * y for x in (0, canvas_w) for y in (0, h)]
        if lo <= min(corners) and max(corners) <= hi:
            return a, b, c
        max_slant /= 2
    return float(rng.uniform(lo, hi)), 0.0, 0.0


def _make_layers(rng: np.random.Generator, h: int, w: int, max_disparity: float) -> list[_Layer]:
    canvas_w = int(np.ceil(w + max_disparity)) + 2
    d_hi = 0.9 * max_disparity
    bg_hi = max(1.5, 0.3 * max_disparity)
    bg = _plane(rng, 1.0, bg_hi, h, canvas_w, 0.3 * bg_hi)
    layers = [_Layer(*bg, "plane", (0, 0, 0, 0), _texture(rng, h, canvas_w), 0, 0, canvas_w)]
    for _ in range(int(rng.integers(4, 11))):
        slanted = rng.random() < 0.4
        a, b, c = _plane(rng, bg_hi, d_hi, h, canvas_w, 0.25 * max_disparity if slanted else 0.0)
        if rng.random() < 0.5:
            bw, bh = rng.uniform(0.08, 0.45) * w, rng.uniform(0.1, 0.5) * h
            x0, y0 = rng.uniform(-0.1 * w, w) + a, rng.uniform(-0.1 * h, h - 0.1 * h)
            shape, box = "rect", (x0, y0, x0 + bw, y0 + bh)
        else:
            r = rng.uniform(0.05, 0.25) * min(h, w)
            shape, box = "disc", (rng.uniform(0, w) + a, rng.uniform(0, h), r, 0.0)
        # the texture only needs to cover the shape's bounding box (clipped to the canvas)
        if shape == "rect":
            bx0, by0, bx1, by1 = box
        else:
            bx0, by0, bx1, by1 = box[0] - box[2], box[1] - box[2], box[0] + box[2], box[1] + box[2]
        x_off, y_off = max(int(np.floor(bx0)) - 1, 0), max(int(np.floor(by0)) - 1, 0)
        x_end, y_end = min(int(np.ceil(bx1)) + 2, canvas_w), min(int(np.ceil(by1)) + 2, h)
        if x_end - x_off < 2 or y_end - y_off < 2:
            continue  # entirely outside the canvas
        texture = _texture(rng, max(y_end - y_off, 8), max(x_end - x_off, 8))
        layers.append(_Layer(a, b, c, shape, box, texture, x_off, y_off, canvas_w))
    return layers


def _render_view(layers: list[_Layer], h: int, w: int, right: bool) -> tuple[np.ndarray, np.ndarray]:
    """z-buffer render of one view: (RGB float32, disparity float32 with 0 = nothing)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.zeros((h, w, 3), np.float32)
    zbuf = np.zeros((h, w), np.float32)
    for layer in sorted(layers, key=lambda L: L.a):  # far to near; the z-test settles overlaps exactly
        xl = (x + layer.a + layer.c * y) / (1.0 - layer.b) if right else x
        d = layer.disparity(xl, y).astype(np.float32)
        paint = layer.mask(xl, y) & (d > zbuf)
        if not paint.any():
            continue
        colour = cv2.remap(
            layer.texture,
            (xl - np.float32(layer.x_off)).astype(np.float32),
            y - np.float32(layer.y_off),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        image[paint] = colour[paint]
        zbuf[paint] = d[paint]
    return image, zbuf


def _photometric(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Per-view gain, bias, gamma and sensor noise -> uint8."""
    gain = rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    bias = np.float32(rng.uniform(-8, 8))
    gamma = float(rng.uniform(0.9, 1.1))
    out = 255.0 * (np.clip(image * gain + bias, 0, 255) / 255.0) ** gamma
    out += rng.standard_normal(size=out.shape, dtype=np.float32) * np.float32(rng.uniform(0.5, 2.0))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def render_stereo_pair(rng: np.random.Generator, height: int, width: int, max_disparity: float) -> SyntheticPair:
    """Render one rectified pair (see the module docstring); disparities lie in [1, 0.9 max_disparity]."""
    if height < 8 or width < 8 or max_disparity < 2:
        raise ValueError(f"need height, width >= 8 and max_disparity >= 2, got {height}x{width}, {max_disparity}")
    layers = _make_layers(rng, height, width, float(max_disparity))
    left, disp = _render_view(layers, height, width, right=False)
    right, disp_right = _render_view(layers, height, width, right=True)
    xr = np.arange(width, dtype=np.float32)[None, :] - disp
    col = np.clip(np.round(xr), 0, width - 1).astype(np.intp)
    seen = np.take_along_axis(disp_right, col, axis=1)
    nocc = ((xr >= 0) & (np.abs(seen - disp) < 1.0)).astype(np.uint8) * 255
    return SyntheticPair(_photometric(rng, left), _photometric(rng, right), disp, disp_right, nocc)


def generate_synthetic_stereo(
    out_dir: str | os.PathLike,
    num_pairs: int,
    height: int,
    width: int,
    max_disparity: float,
    seed: int = 0,
    *,
    write_right_disparity: bool = False,
    annotation_name: str = "synthetic.txt",
) -> Path:
    """Write ``num_pairs`` pairs under ``out_dir`` and return the annotation file path.

    Layout: ``left/NNNNNN.png``, ``right/NNNNNN.png``, ``disparity/NNNNNN.pfm`` (left view, float32),
    ``nocc/NNNNNN.png`` (255 = non-occluded), optionally ``disparity_right/NNNNNN.pfm``, and
    ``<annotation_name>`` with 4 columns and paths relative to ``out_dir`` (readable by every
    dataset class that reads PFM: GenericDataset, Middlebury, Eth3d).
    """
    out = Path(out_dir)
    lines = []
    for i in range(int(num_pairs)):
        pair = render_stereo_pair(np.random.default_rng([int(seed), i]), int(height), int(width), max_disparity)
        stem = f"{i:06d}"
        write_png(out / "left" / f"{stem}.png", pair.left)
        write_png(out / "right" / f"{stem}.png", pair.right)
        write_pfm(out / "disparity" / f"{stem}.pfm", pair.disparity)
        write_png(out / "nocc" / f"{stem}.png", pair.nocc)
        if write_right_disparity:
            write_pfm(out / "disparity_right" / f"{stem}.pfm", pair.disparity_right)
        lines.append(f"left/{stem}.png right/{stem}.png disparity/{stem}.pfm nocc/{stem}.png")
    annotation = out / annotation_name
    header = f"# synthetic stereo: {num_pairs} pairs {height}x{width}, max_disparity {max_disparity}, seed {seed}\n"
    atomic_write_bytes(annotation, (header + "\n".join(lines) + "\n").encode())
    return annotation
