"""Evaluation metrics for stereo disparity and monocular depth, computed per image then averaged.

Stereo (docs/runtime.md, "evaluate"), over the pixels of a mask (``valid``, and ``nocc`` when the
data has a non-occlusion mask), with ``err = |pred - gt|`` in pixels:

======= ===========================================================================
epe     mean err
bp1     % of pixels with err > 1 px (likewise bp2, bp3)
d1      % of pixels with err > 3 px AND err > 5 % of gt (KITTI's D1)
rmse    sqrt(mean(err ** 2)): one square root (TAO takes it twice, a bug)
======= ===========================================================================

Mono, over valid pixels, on depth (metres, or the depth implied by an aligned inverse depth):

========= =========================================================================
abs_rel   mean |pred - gt| / gt
rmse      sqrt(mean((pred - gt) ** 2))
d1..d3    % of pixels with max(pred / gt, gt / pred) < 1.25 ** k (delta1..3; TAO's names)
========= =========================================================================

For relative models (affine-invariant inverse depth) :func:`align_scale_shift` fits ``s * pred + t``
to the target inverse depth by least squares on valid pixels before converting to depth;
:func:`mono_depth_metrics` does that (or not) and scores one image, for validation and evaluate alike.

Every metric is computed for each image, then averaged over images (an image with no valid pixel is
skipped and counted). :class:`MetricAverager` keeps sums and counts so that a distributed run can
reduce them across ranks (``sums``/``counts`` tensors, summed) before averaging.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

__all__ = [
    "STEREO_METRICS",
    "MONO_METRICS",
    "stereo_image_metrics",
    "mono_image_metrics",
    "mono_depth_metrics",
    "align_scale_shift",
    "MetricAverager",
]

STEREO_METRICS: tuple[str, ...] = ("epe", "bp1", "bp2", "bp3", "d1", "rmse")
MONO_METRICS: tuple[str, ...] = ("abs_rel", "rmse", "d1", "d2", "d3")


def stereo_image_metrics(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> dict[str, float] | None:
    """Metrics of ONE image: ``pred``, ``gt`` float and ``mask`` bool of the same shape (any rank).

    Returns None when the mask selects no pixel.
    """
    mask = mask.bool()
    if not bool(mask.any()):
        return None
    p = pred.detach().float()[mask]
    g = gt.detach().float()[mask]
    err = (p - g).abs()
    return {
        "epe": float(err.mean()),
        "bp1": 100.0 * float((err > 1.0).float().mean()),
        "bp2": 100.0 * float((err > 2.0).float().mean()),
        "bp3": 100.0 * float((err > 3.0).float().mean()),
        "d1": 100.0 * float(((err > 3.0) & (err > 0.05 * g.abs())).float().mean()),
        "rmse": math.sqrt(float((err * err).mean())),
    }


def align_scale_shift(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Least-squares ``s * pred + t`` matching ``target`` on ``mask`` (one image); returns the aligned map."""
    mask = mask.bool()
    p = pred.detach().double()[mask]
    g = target.detach().double()[mask]
    if p.numel() < 2:
        return pred
    a = torch.stack([p, torch.ones_like(p)], dim=1)
    solution = torch.linalg.lstsq(a, g[:, None]).solution.squeeze(1)
    scale, shift = float(solution[0]), float(solution[1])
    return pred * scale + shift


def mono_image_metrics(
    pred_depth: torch.Tensor, gt_depth: torch.Tensor, mask: torch.Tensor, *, min_depth: float = 1e-3
) -> dict[str, float] | None:
    """Depth metrics of ONE image (metres); predictions are clamped to ``min_depth`` first."""
    mask = mask.bool() & (gt_depth > 0)
    if not bool(mask.any()):
        return None
    p = pred_depth.detach().double()[mask].clamp(min=min_depth)
    g = gt_depth.detach().double()[mask]
    ratio = torch.maximum(p / g, g / p)
    return {
        "abs_rel": float(((p - g).abs() / g).mean()),
        "rmse": math.sqrt(float(((p - g) ** 2).mean())),
        "d1": 100.0 * float((ratio < 1.25).float().mean()),
        "d2": 100.0 * float((ratio < 1.25**2).float().mean()),
        "d3": 100.0 * float((ratio < 1.25**3).float().mean()),
    }


def mono_depth_metrics(pred: torch.Tensor, target: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, *,
                       relative: bool) -> dict[str, float] | None:
    """Depth metrics of one image: relative predictions are aligned (scale, shift) to the target
    inverse depth first, then inverted to depth."""
    if relative:
        aligned = align_scale_shift(pred.float(), target.float(), valid)
        pred_depth = 1.0 / aligned.clamp(min=1e-6)
    else:
        pred_depth = pred.float()
    return mono_image_metrics(pred_depth, depth.float(), valid)


class MetricAverager:
    """Per-image average of named metrics, with sums and counts that can be reduced across ranks."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self.sums = torch.zeros(len(self.names), dtype=torch.float64)
        self.counts = torch.zeros(len(self.names), dtype=torch.float64)

    def add(self, values: Mapping[str, float] | None) -> None:
        """Add one image's metrics (None = no valid pixel: nothing added)."""
        if values is None:
            return
        for i, name in enumerate(self.names):
            if name in values and math.isfinite(values[name]):
                self.sums[i] += values[name]
                self.counts[i] += 1

    def state(self) -> torch.Tensor:
        """``[sums, counts]`` stacked (2, N), for an all-reduce (sum) across ranks."""
        return torch.stack([self.sums, self.counts])

    def load_state(self, state: torch.Tensor) -> None:
        self.sums = state[0].detach().to("cpu", torch.float64).clone()
        self.counts = state[1].detach().to("cpu", torch.float64).clone()

    def result(self, prefix: str = "") -> dict[str, float]:
        """``{prefix + name: mean}`` for every metric seen at least once."""
        return {
            f"{prefix}{name}": float(self.sums[i] / self.counts[i])
            for i, name in enumerate(self.names)
            if self.counts[i] > 0
        }

    @property
    def images(self) -> int:
        return int(self.counts.max()) if len(self.names) else 0
