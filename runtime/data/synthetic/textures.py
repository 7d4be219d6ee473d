"""The texture bank: surfaces' appearance, made once per process and sampled by every layer.

A layer's texture is a bank entry seen through a random affine map (scale, rotation, offset) and a
colour transform, so a few dozen entries give endless variety at the cost of one ``cv2.remap`` per
layer. Entries (uint8 RGB, ``BANK_SIZE`` square, tileable where the kind allows):

* ``pink``: noise whose power falls as 1/f^beta (beta 1.6..2.8; natural images have ~2), in correlated
  colour;
* ``pattern``: stripes, checkerboards and grids at random periods (repeated structure: the ambiguity a
  matcher must resolve from context);
* ``flat``: one colour with a faint gradient (large untextured areas: walls, paint, sky-like);
* ``photo``: photographs that ship inside scikit-image (people, animals, brick, grass, gravel, text,
  astronomy), cut and resized; skipped when scikit-image is not installed. None of them is a stereo
  evaluation scene.

The bank is a pure function of its seed: the same seed gives the same bytes.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

__all__ = ["BANK_SIZE", "TextureBank", "texture_bank"]

BANK_SIZE = 512  # a power of two: texel coordinates wrap with a bit mask
# scikit-image's bundled photographs (no download needed); never a stereo evaluation scene.
_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "camera", "brick", "grass", "gravel", "coins",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "text", "retina",
)  # fmt: skip


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    """Tileable 1/f^beta-power noise, correlated across channels, 0..255 float32 (n, n, 3)."""
    f = np.fft.fftfreq(n).astype(np.float32)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    radius[0, 0] = 1.0
    beta = float(rng.uniform(1.6, 2.8))  # power spectrum ~ 1/f^beta (natural images: ~2)
    amp = radius ** (-beta / 2)
    amp[0, 0] = 0.0
    lum = np.fft.ifft2(amp * np.exp(2j * np.pi * rng.random((n, n)))).real
    chroma = [np.fft.ifft2(amp * np.exp(2j * np.pi * rng.random((n, n)))).real for _ in range(2)]
    planes = [lum, *chroma]
    planes = [(p - p.mean()) / (p.std() + 1e-8) for p in planes]
    base = rng.uniform(40, 215, size=3)
    contrast = rng.uniform(15, 60)
    sat = rng.uniform(0.0, 0.6)
    mix = np.array([[1.0, sat, 0.0], [1.0, -0.5 * sat, 0.6 * sat], [1.0, -0.5 * sat, -0.6 * sat]])
    rgb = np.stack([sum(mix[c, k] * planes[k] for k in range(3)) for c in range(3)], axis=-1)
    return np.clip(base + contrast * rgb, 0, 255).astype(np.float32)


def _pattern(rng: np.random.Generator, n: int) -> np.ndarray:
    """Tileable stripes, checkerboard or grid (periods that divide n), two colours plus grain."""
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    periods = [p for p in (4, 8, 16, 32, 64) if n % p == 0]
    px, py = float(rng.choice(periods)), float(rng.choice(periods))
    kind = rng.integers(3)
    if kind == 0:
        p = 0.5 + 0.5 * np.sin(2 * np.pi * (x / px + rng.integers(0, 3) * y / py))
    elif kind == 1:
        p = ((np.floor(x / px) + np.floor(y / py)) % 2).astype(np.float32)
    else:
        lw = max(1.0, px / 6)
        p = ((x % px < lw) | (y % py < lw)).astype(np.float32)
    c0, c1 = rng.uniform(0, 255, size=(2, 3))
    tex = c0 * p[..., None] + c1 * (1 - p[..., None])
    return np.clip(tex + rng.normal(0, rng.uniform(1, 8), size=(n, n, 1)), 0, 255).astype(np.float32)


def _flat(rng: np.random.Generator, n: int) -> np.ndarray:
    """One colour with a faint linear gradient: an untextured surface."""
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / n
    colour = rng.uniform(20, 235, size=3)
    slope = rng.uniform(-20, 20, size=(2, 1, 1, 1))
    tex = colour + slope[0] * x[..., None] + slope[1] * y[..., None]
    return np.clip(tex, 0, 255).astype(np.float32)


@functools.cache
def _photo_sources() -> tuple[np.ndarray, ...]:
    try:
        from skimage import data
    except ImportError:
        return ()
    out = []
    for name in _PHOTOS:
        try:
            img = np.asarray(getattr(data, name)())
        except Exception:  # an image missing from this scikit-image build
            continue
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        out.append(np.ascontiguousarray(img[..., :3]).astype(np.uint8))
    return tuple(out)


def _photo(rng: np.random.Generator, n: int) -> np.ndarray | None:
    sources = _photo_sources()
    if not sources:
        return None
    img = sources[int(rng.integers(len(sources)))]
    h, w = img.shape[:2]
    side = int(rng.uniform(0.4, 1.0) * min(h, w))
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = img[y0 : y0 + side, x0 : x0 + side]
    return cv2.resize(crop, (n, n), interpolation=cv2.INTER_AREA).astype(np.float32)


class TextureBank:
    """``size`` uint8 RGB textures of ``BANK_SIZE``^2 with their kinds (see the module docstring).

    ``tiles`` holds each texture with a one-texel wrapped border on its right and bottom edges: with
    texel coordinates wrapped into ``[0, BANK_SIZE)`` (a power of two: a bit mask), bilinear sampling
    never leaves the array and takes OpenCV's fast path. ``textures`` are views of the tiles without
    the border."""

    KINDS = ("pink", "pattern", "flat", "photo")

    def __init__(self, seed: int, size: int = 40) -> None:
        rng = np.random.default_rng([int(seed), 0x7E7])
        self.tiles: list[np.ndarray] = []
        self.kinds: list[str] = []
        makers = {"pink": _pink, "pattern": _pattern, "flat": _flat, "photo": _photo}
        shares = {"pink": 0.4, "pattern": 0.2, "flat": 0.15, "photo": 0.25}
        for kind, share in shares.items():
            for _ in range(max(1, round(share * size))):
                tex = makers[kind](rng, BANK_SIZE)
                if tex is None:  # no photographs here: a 1/f texture instead
                    kind_used, tex = "pink", _pink(rng, BANK_SIZE)
                else:
                    kind_used = kind
                tex = np.clip(np.round(tex), 0, 255).astype(np.uint8)
                self.tiles.append(cv2.copyMakeBorder(tex, 0, 1, 0, 1, cv2.BORDER_WRAP))
                self.kinds.append(kind_used)
        self.textures = [t[:BANK_SIZE, :BANK_SIZE] for t in self.tiles]

    def index_of(self, rng: np.random.Generator, kind: str) -> int:
        """A random entry of ``kind`` (any entry when the bank has none of it)."""
        idx = [i for i, k in enumerate(self.kinds) if k == kind]
        return int(rng.choice(idx)) if idx else int(rng.integers(len(self.textures)))


@functools.lru_cache(maxsize=4)
def texture_bank(seed: int) -> TextureBank:
    """The process-wide bank for ``seed`` (built once, ~1 s)."""
    return TextureBank(seed)
