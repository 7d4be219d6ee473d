"""Per-view photometry: what makes the two cameras of a real rig disagree about the same surface.

Each view gets its own blur, exposure (per-channel gain), gamma, vignetting (radial fall-off with a
jittered centre) and sensor noise; specular highlights are drawn near the same surface point in both
views but shifted by a view-dependent offset (glare moves with the viewpoint, the surface does not);
the right view gets a small rectification error (a vertical shift and a rotation) that the ground truth
does not follow, as in a slightly miscalibrated rig.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

__all__ = ["Highlight", "sample_highlights", "finish_view"]

_NOISE_FIELD = (1024, 2048)  # the shared noise field's least size (a larger view gets a larger one)
Highlight = tuple[float, float, float, float]  # x, y, sigma, amplitude


def sample_highlights(rng: np.random.Generator, h: int, w: int, cfg) -> list[Highlight]:
    if rng.random() >= cfg.specular_prob:
        return []
    return [
        (float(rng.uniform(0, w)), float(rng.uniform(0, h)), float(rng.uniform(3, 0.08 * max(h, w) + 3)),
         float(rng.uniform(60, 200)))
        for _ in range(int(rng.integers(1, 4)))
    ]  # fmt: skip


def _add_highlights(image: np.ndarray, highlights: list[tuple[float, float, float, float]]) -> None:
    h, w = image.shape[:2]
    for x, y, sigma, amp in highlights:
        r = int(3 * sigma) + 1
        x0, x1, y0, y1 = max(int(x) - r, 0), min(int(x) + r + 1, w), max(int(y) - r, 0), min(int(y) + r + 1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        blob = amp * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma * sigma))
        image[y0:y1, x0:x1] += blob[..., None]


@functools.lru_cache(maxsize=2)
def _noise_field(h: int, w: int) -> np.ndarray:
    """A fixed unit-normal field (per process) from which each view takes a random window."""
    return np.random.default_rng(0x5E).standard_normal((h, w, 3), dtype=np.float32)


def finish_view(
    rng: np.random.Generator, image: np.ndarray, cfg, highlights: list[Highlight], right: bool
) -> np.ndarray:
    """uint8 RGB -> uint8 RGB with this view's photometry (see the module docstring)."""
    h, w = image.shape[:2]
    sigma = float(rng.uniform(0.0, cfg.blur_sigma))
    if sigma > 0.25:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    gain = np.exp(rng.normal(0.0, cfg.exposure)) * (1.0 + rng.normal(0.0, 0.03, size=3))
    k, cx, cy = 0.0, w / 2, h / 2
    if cfg.vignetting > 0:
        k = float(rng.uniform(0.0, cfg.vignetting))
        cx, cy = w / 2 + rng.normal(0, 0.05 * w), h / 2 + rng.normal(0, 0.05 * h)
    # exposure times vignetting, gain_c * max(1 - k r^2, 0.1), as one (h, w, 3) map (r^2 is a row term
    # plus a column term: one broadcast sum), so the image goes to float and is scaled in one pass
    radius = 0.5 * np.hypot(h, w)
    xs = ((np.arange(w, dtype=np.float32) - np.float32(cx)) / np.float32(radius)) ** 2
    ys = ((np.arange(h, dtype=np.float32) - np.float32(cy)) / np.float32(radius)) ** 2
    falloff = np.add((1.0 - np.float32(k) * ys)[:, None], (-np.float32(k) * xs)[None, :])
    np.maximum(falloff, np.float32(0.1), out=falloff)
    image = cv2.multiply(image, cv2.merge([falloff * np.float32(g) for g in gain]), dtype=cv2.CV_32F)
    if highlights:
        _add_highlights(image, highlights)
    if right and cfg.rectification_px > 0:
        dy = float(rng.normal(0.0, cfg.rectification_px))
        angle = float(rng.normal(0.0, cfg.rectification_px / max(w, 1)))  # ~rectification_px at the edges
        m = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0]], np.float32)
        m[:, 2] = np.array([w / 2, h / 2], np.float32) - m[:, :2] @ np.array([w / 2, h / 2], np.float32)
        m[1, 2] += dy
        # replicated border: the shift is under a pixel or two, and OpenCV's replicate path is 2x its reflect one
        image = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    noise = float(rng.uniform(0.3, cfg.noise_sigma)) if cfg.noise_sigma > 0.3 else 0.0
    field = _noise_field(max(_NOISE_FIELD[0], h), max(_NOISE_FIELD[1], w))
    y0, x0 = int(rng.integers(field.shape[0] - h + 1)), int(rng.integers(field.shape[1] - w + 1))
    # sensor noise before quantisation (a random window of a shared unit-normal field), then round and
    # saturate to 8 bits, in one pass
    out = cv2.addWeighted(image, 1.0, field[y0 : y0 + h, x0 : x0 + w], noise, 0.0, dtype=cv2.CV_8U)
    gamma = float(np.exp(rng.normal(0.0, cfg.gamma)))
    if abs(gamma - 1.0) > 1e-3:  # response curve as a lookup table on the 8-bit values
        lut = np.clip(np.round(255.0 * (np.arange(256) / 255.0) ** gamma), 0, 255).astype(np.uint8)
        out = cv2.LUT(out, lut)
    return out
