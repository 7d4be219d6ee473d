"""Augmentation driven by the spec's ``augmentation`` block (docs/spec_and_results.md, "Augmentation").

Training (``StereoAugmentor``), in this order, all on numpy arrays with OpenCV resizes:

1. **scale / stretch** (prob ``spatial_aug_prob``): log2 scale in [min_scale, max_scale], with prob
   ``stretch_prob`` an extra independent log2 stretch in [-max_stretch, max_stretch] for x and y.
   Images use bilinear, disparity/masks nearest (no invented values across depth edges);
   sparse GT (``sample["sparse"]``, set by Kitti) moves each point to its new pixel instead, so
   upscaling never copies a LiDAR point into unmeasured pixels; disparity is multiplied by the x
   factor. Images smaller than the crop are upscaled to fit.
2. **hshift** (prob ``hshift_prob``): the right view moves left by s in [1, 16] px, so every disparity
   grows by s (left x still matches right x - d).
3. **flips** (only when ``do_flip``): vertical (prob ``v_flip_prob``) flips both views and the GT.
   Horizontal (prob ``h_flip_prob``) mirrors both views AND swaps them; the new left view is the old
   right one, so the GT becomes the mirrored *right-view* disparity. It is applied only when the
   sample carries ``disparity_right``; with left-view GT only (all annotation-file data) the
   h-flip is skipped, because mirroring without a right-view GT would give a wrong target.
4. **crop** to ``crop_size`` [H, W]; retried up to 10 times until the crop has at least
   ``crop_min_valid_disp_ratio`` valid pixels. With prob ``yjitter_prob`` the right crop starts up
   to 2 rows above or below the left one (robustness to imperfect rectification).
5. **colour**: jitter of brightness, contrast, saturation [lo, hi], hue [lo, hi] (fraction of a
   turn); with prob ``color_aug_prob`` each view draws its own factors (asymmetric), else both share.
6. **eraser** (prob ``eraser_aug_prob``): 1-2 rectangles of the right view replaced by its mean colour.
7. **normalise**: ``(rgb / 255 - input_mean) / input_std``, CHW float32.

Evaluation and inference (``EvalTransform``) are deterministic: normalise, and optionally a centre
crop or a resize to a given size (disparity scales with the x factor).

Randomness comes from a ``numpy.random.Generator`` passed per call; the datasets make one per sample
from ``(seed, epoch, index)``, so results do not depend on the number of DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import cv2
import numpy as np

__all__ = [
    "AugmentConfig",
    "StereoAugmentor",
    "EvalTransform",
    "MonoAugmentor",
    "normalize",
    "color_jitter",
    "jitter_factors",
]


@dataclass
class AugmentConfig:
    """The spec's augmentation block with TAO's defaults; build with :meth:`from_spec`."""

    input_mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    input_std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    crop_size: list[int] = field(default_factory=lambda: [518, 518])
    min_scale: float = -0.2
    max_scale: float = 0.4
    do_flip: bool = False
    yjitter_prob: float = 1.0
    color_aug_prob: float = 0.2
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: list[float] = field(default_factory=lambda: [0.0, 1.4])
    hue: list[float] = field(default_factory=lambda: [-5 / 180, 5 / 180])
    eraser_aug_prob: float = 0.5
    spatial_aug_prob: float = 1.0
    stretch_prob: float = 0.8
    max_stretch: float = 0.2
    h_flip_prob: float = 0.5
    v_flip_prob: float = 0.5
    hshift_prob: float = 0.5
    crop_min_valid_disp_ratio: float = 0.0

    @classmethod
    def from_spec(cls, spec: Any = None, **overrides: Any) -> AugmentConfig:
        """Read the attributes (or mapping keys) this class knows from ``spec``; missing = default."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if isinstance(spec, Mapping) and f.name in spec:
                values[f.name] = spec[f.name]
            elif spec is not None and not isinstance(spec, Mapping) and getattr(spec, f.name, None) is not None:
                values[f.name] = getattr(spec, f.name)
        values.update(overrides)
        return cls(**values)


def normalize(rgb: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """RGB uint8/float (H, W, 3) in 0..255 -> float32 (3, H, W): (x/255 - mean) / std.

    Transposes the (small) uint8 array first, then one in-place multiply and subtract.
    """
    std = np.asarray(std, np.float32)
    scale = (1.0 / (255.0 * std))[:, None, None]
    offset = (np.asarray(mean, np.float32) / std)[:, None, None]
    chw = np.ascontiguousarray(np.asarray(rgb).transpose(2, 0, 1)).astype(np.float32)
    chw *= scale
    chw -= offset
    return chw


def color_jitter(rgb: np.ndarray, factors: tuple[float, float, float, float]) -> np.ndarray:
    """Apply brightness, contrast, saturation factors and a hue shift (turns) to RGB uint8.

    Brightness and contrast fold into one saturating affine map around the (brightened) gray mean;
    saturation blends with the gray image; hue rotates OpenCV's 0..179 hue channel. All steps are
    uint8 OpenCV calls (fast); the result is clipped to 0..255 after each step like torchvision's.
    """
    brightness, contrast, saturation, hue = factors
    rgb = np.ascontiguousarray(rgb)
    gray_mean = float(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).mean()) * brightness
    img = cv2.addWeighted(rgb, brightness * contrast, rgb, 0.0, gray_mean * (1.0 - contrast), dtype=cv2.CV_8U)
    if saturation != 1.0:
        gray = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        img = cv2.addWeighted(img, saturation, gray, 1.0 - saturation, 0.0, dtype=cv2.CV_8U)
    shift = int(round(hue * 180))
    if shift:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[:, :, 0] = ((hsv[:, :, 0].astype(np.int16) + shift) % 180).astype(np.uint8)
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return img


def jitter_factors(cfg: AugmentConfig, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """Draw (brightness, contrast, saturation, hue) for :func:`color_jitter` from the config ranges."""
    return (
        rng.uniform(max(0.0, 1 - cfg.brightness), 1 + cfg.brightness),
        rng.uniform(max(0.0, 1 - cfg.contrast), 1 + cfg.contrast),
        rng.uniform(*cfg.saturation),
        rng.uniform(*cfg.hue),
    )


def _resize_nearest(array: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    if array is None:
        return None
    is_bool = array.dtype == np.bool_
    src = array.astype(np.uint8) if is_bool else array
    out = cv2.resize(src, size, interpolation=cv2.INTER_NEAREST)
    return out.astype(bool) if is_bool else out


def _resize_sparse(
    disparity: np.ndarray, valid: np.ndarray, size: tuple[int, int], fx: float
) -> tuple[np.ndarray, np.ndarray]:
    """Resize sparse GT (e.g. KITTI LiDAR) by moving each valid point to its new pixel, without
    duplicating points into pixels that had no measurement. Returns (disparity * fx, valid)."""
    h, w = disparity.shape
    new_w, new_h = size
    ys, xs = np.nonzero(valid)
    nx = np.round((xs + 0.5) * (new_w / w) - 0.5).astype(np.intp)
    ny = np.round((ys + 0.5) * (new_h / h) - 0.5).astype(np.intp)
    keep = (nx >= 0) & (nx < new_w) & (ny >= 0) & (ny < new_h)
    out = np.zeros((new_h, new_w), np.float32)
    out_valid = np.zeros((new_h, new_w), bool)
    out[ny[keep], nx[keep]] = disparity[ys[keep], xs[keep]] * np.float32(fx)
    out_valid[ny[keep], nx[keep]] = True
    return out, out_valid


class StereoAugmentor:
    """Random training augmentation of a stereo sample (see the module docstring for the steps).

    Call with a dict holding ``left``, ``right`` (RGB uint8 (H, W, 3)), optional ``disparity``
    (float32 (H, W), 0 where unknown), ``valid`` (bool), ``nocc`` (bool), ``disparity_right``
    (float32, right-view GT, enables the horizontal flip) and a ``numpy.random.Generator``. Returns
    the same keys, cropped and augmented, with ``left``/``right`` normalised float32 (3, H, W).
    """

    max_hshift = 16
    max_yjitter = 2

    def __init__(self, config: AugmentConfig, *, max_disparity: float = float("inf")) -> None:
        self.cfg = config
        self.max_disparity = max_disparity
        self.mean = np.asarray(config.input_mean, dtype=np.float32)
        self.std = np.asarray(config.input_std, dtype=np.float32)

    # ----------------------------------------------------------------------------------- geometry
    def _scale(self, s: dict, rng: np.random.Generator) -> None:
        cfg = self.cfg
        h, w = s["left"].shape[:2]
        ch, cw = cfg.crop_size
        floor = max(ch / h, cw / w)  # never smaller than the crop
        sx = sy = 1.0
        if rng.random() < cfg.spatial_aug_prob:
            sx = sy = 2.0 ** rng.uniform(cfg.min_scale, cfg.max_scale)
            if rng.random() < cfg.stretch_prob:
                sx *= 2.0 ** rng.uniform(-cfg.max_stretch, cfg.max_stretch)
                sy *= 2.0 ** rng.uniform(-cfg.max_stretch, cfg.max_stretch)
        sx, sy = max(sx, floor), max(sy, floor)
        if sx == 1.0 and sy == 1.0:
            return
        size = (max(int(round(w * sx)), cw), max(int(round(h * sy)), ch))
        fx = size[0] / w
        for key in ("left", "right"):
            s[key] = cv2.resize(s[key], size, interpolation=cv2.INTER_LINEAR)
        if s.get("sparse") and s.get("disparity") is not None:
            s["disparity"], s["valid"] = _resize_sparse(s["disparity"], s["valid"], size, fx)
            s["nocc"] = None if s.get("nocc") is None else _resize_nearest(s["nocc"], size) & s["valid"]
            return
        for key in ("disparity", "disparity_right"):
            if s.get(key) is not None:
                s[key] = _resize_nearest(s[key], size) * np.float32(fx)
        for key in ("valid", "nocc", "valid_right"):
            s[key] = _resize_nearest(s.get(key), size)

    def _hshift(self, s: dict, rng: np.random.Generator) -> None:
        if rng.random() >= self.cfg.hshift_prob:
            return
        shift = int(rng.integers(1, self.max_hshift + 1))
        right = s["right"]
        s["right"] = np.concatenate([right[:, shift:], np.repeat(right[:, -1:], shift, axis=1)], axis=1)
        if s.get("disparity") is not None:
            s["disparity"] = np.where(s["valid"], s["disparity"] + shift, 0).astype(np.float32)
        if s.get("disparity_right") is not None:
            d = s["disparity_right"]
            vr = s["valid_right"]
            shifted = np.where(vr, d + shift, 0).astype(np.float32)
            s["disparity_right"] = np.concatenate([shifted[:, shift:], np.zeros_like(d[:, :shift])], axis=1)
            s["valid_right"] = np.concatenate([vr[:, shift:], np.zeros_like(vr[:, :shift])], axis=1)

    def _flip(self, s: dict, rng: np.random.Generator) -> None:
        cfg = self.cfg
        if not cfg.do_flip:
            return
        if s.get("disparity_right") is not None and rng.random() < cfg.h_flip_prob:
            s["left"], s["right"] = s["right"][:, ::-1], s["left"][:, ::-1]
            s["disparity"], s["disparity_right"] = s["disparity_right"][:, ::-1], s["disparity"][:, ::-1]
            s["valid"], s["valid_right"] = s["valid_right"][:, ::-1], s["valid"][:, ::-1]
            s["nocc"] = None  # the right view's occlusion mask is unknown
        if rng.random() < cfg.v_flip_prob:
            for key in ("left", "right", "disparity", "disparity_right", "valid", "valid_right", "nocc"):
                if s.get(key) is not None:
                    s[key] = s[key][::-1]

    def _crop(self, s: dict, rng: np.random.Generator) -> None:
        cfg = self.cfg
        ch, cw = cfg.crop_size
        h, w = s["left"].shape[:2]
        valid = s.get("valid")
        for _ in range(10):
            y0 = int(rng.integers(0, h - ch + 1))
            x0 = int(rng.integers(0, w - cw + 1))
            if valid is None or cfg.crop_min_valid_disp_ratio <= 0:
                break
            if valid[y0 : y0 + ch, x0 : x0 + cw].mean() >= cfg.crop_min_valid_disp_ratio:
                break
        y1 = y0
        if rng.random() < cfg.yjitter_prob:
            y1 = int(np.clip(y0 + rng.integers(-self.max_yjitter, self.max_yjitter + 1), 0, h - ch))
        s["right"] = s["right"][y1 : y1 + ch, x0 : x0 + cw]
        for key in ("left", "disparity", "valid", "nocc"):
            if s.get(key) is not None:
                s[key] = s[key][y0 : y0 + ch, x0 : x0 + cw]
        s.pop("disparity_right", None)
        s.pop("valid_right", None)

    # ------------------------------------------------------------------------------------- photometric
    def _color(self, s: dict, rng: np.random.Generator) -> None:
        shared = jitter_factors(self.cfg, rng)
        asymmetric = rng.random() < self.cfg.color_aug_prob
        s["left"] = color_jitter(np.ascontiguousarray(s["left"]), shared)
        s["right"] = color_jitter(
            np.ascontiguousarray(s["right"]), jitter_factors(self.cfg, rng) if asymmetric else shared
        )

    def _eraser(self, s: dict, rng: np.random.Generator) -> None:
        if rng.random() >= self.cfg.eraser_aug_prob:
            return
        right = s["right"].copy()
        h, w = right.shape[:2]
        mean = right.reshape(-1, 3).mean(axis=0)
        for _ in range(int(rng.integers(1, 3))):
            dx, dy = (
                int(rng.integers(min(50, w // 4), min(100, w // 2) + 1)),
                int(rng.integers(min(50, h // 4), min(100, h // 2) + 1)),
            )
            x0, y0 = int(rng.integers(0, w - dx + 1)), int(rng.integers(0, h - dy + 1))
            right[y0 : y0 + dy, x0 : x0 + dx] = mean
        s["right"] = right

    # ------------------------------------------------------------------------------------------ call
    def __call__(self, sample: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        s = dict(sample)
        if s.get("disparity") is not None and s.get("valid") is None:
            s["valid"] = s["disparity"] > 0
        if s.get("disparity_right") is not None and s.get("valid_right") is None:
            s["valid_right"] = s["disparity_right"] > 0
        self._scale(s, rng)
        self._hshift(s, rng)
        self._flip(s, rng)
        self._crop(s, rng)
        self._color(s, rng)
        self._eraser(s, rng)
        s.pop("sparse", None)
        s["left"] = normalize(s["left"], self.mean, self.std)
        s["right"] = normalize(s["right"], self.mean, self.std)
        if s.get("disparity") is not None:
            valid = s["valid"] & (s["disparity"] > 0) & (s["disparity"] < self.max_disparity)
            s["valid"] = np.ascontiguousarray(valid)
            s["disparity"] = np.ascontiguousarray(np.where(valid, s["disparity"], 0).astype(np.float32))
            if s.get("nocc") is not None:
                s["nocc"] = np.ascontiguousarray(s["nocc"] & valid)
        return s


class EvalTransform:
    """Deterministic eval/inference transform: normalise; optional ``size`` (H, W) with
    ``mode='resize'`` (disparity times the x factor, nearest for GT) or ``mode='crop'`` (centre crop;
    sizes larger than the image are left as they are)."""

    def __init__(
        self,
        config: AugmentConfig,
        *,
        size: tuple[int, int] | None = None,
        mode: str = "resize",
        max_disparity: float = float("inf"),
    ) -> None:
        if mode not in ("resize", "crop"):
            raise ValueError(f"EvalTransform mode: expected 'resize' or 'crop', got {mode!r}")
        self.size, self.mode, self.max_disparity = size, mode, max_disparity
        self.mean = np.asarray(config.input_mean, dtype=np.float32)
        self.std = np.asarray(config.input_std, dtype=np.float32)

    def __call__(self, sample: Mapping[str, Any], rng: np.random.Generator | None = None) -> dict[str, Any]:
        s = dict(sample)
        if self.size is not None:
            th, tw = self.size
            h, w = s["left"].shape[:2]
            if self.mode == "resize" and (th, tw) != (h, w):
                for key in ("left", "right"):
                    s[key] = cv2.resize(s[key], (tw, th), interpolation=cv2.INTER_LINEAR)
                if s.get("disparity") is not None and s.get("sparse"):
                    s["disparity"], s["valid"] = _resize_sparse(s["disparity"], s["valid"], (tw, th), tw / w)
                    s["nocc"] = None if s.get("nocc") is None else _resize_nearest(s["nocc"], (tw, th)) & s["valid"]
                else:
                    if s.get("disparity") is not None:
                        s["disparity"] = _resize_nearest(s["disparity"], (tw, th)) * np.float32(tw / w)
                    for key in ("valid", "nocc"):
                        s[key] = _resize_nearest(s.get(key), (tw, th))
            elif self.mode == "crop":
                y0, x0 = max((h - th) // 2, 0), max((w - tw) // 2, 0)
                for key in ("left", "right", "disparity", "valid", "nocc"):
                    if s.get(key) is not None:
                        s[key] = np.ascontiguousarray(s[key][y0 : y0 + th, x0 : x0 + tw])
        s["left"] = normalize(s["left"], self.mean, self.std)
        s["right"] = normalize(s["right"], self.mean, self.std)
        if s.get("disparity") is not None:
            valid = s["valid"] & (s["disparity"] < self.max_disparity)
            s["valid"] = valid
            s["disparity"] = np.where(valid, s["disparity"], 0).astype(np.float32)
            if s.get("nocc") is not None:
                s["nocc"] = s["nocc"] & valid
        return s


class MonoAugmentor:
    """Training augmentation of a mono sample (``image`` RGB uint8, ``depth`` float32, ``valid``):
    isotropic scale (spatial_aug_prob, [min_scale, max_scale]), random crop to crop_size, horizontal
    flip (h_flip_prob when do_flip; always geometry-safe for one view), colour jitter, normalise."""

    def __init__(self, config: AugmentConfig) -> None:
        self.cfg = config
        self.mean = np.asarray(config.input_mean, dtype=np.float32)
        self.std = np.asarray(config.input_std, dtype=np.float32)

    def __call__(self, sample: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        cfg, s = self.cfg, dict(sample)
        h, w = s["image"].shape[:2]
        ch, cw = cfg.crop_size
        scale = 2.0 ** rng.uniform(cfg.min_scale, cfg.max_scale) if rng.random() < cfg.spatial_aug_prob else 1.0
        scale = max(scale, ch / h, cw / w)
        if scale != 1.0:
            size = (max(int(round(w * scale)), cw), max(int(round(h * scale)), ch))
            s["image"] = cv2.resize(s["image"], size, interpolation=cv2.INTER_LINEAR)
            s["depth"] = _resize_nearest(s.get("depth"), size)
            s["valid"] = _resize_nearest(s.get("valid"), size)
        h, w = s["image"].shape[:2]
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        flip = cfg.do_flip and rng.random() < cfg.h_flip_prob
        for key in ("image", "depth", "valid"):
            if s.get(key) is not None:
                part = s[key][y0 : y0 + ch, x0 : x0 + cw]
                s[key] = np.ascontiguousarray(part[:, ::-1] if flip else part)
        s["image"] = normalize(color_jitter(s["image"], jitter_factors(cfg, rng)), self.mean, self.std)
        return s
