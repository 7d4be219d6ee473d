"""Test helper: warp the right view to the left with a disparity, and score the match (proves the sign
and scale of a ground truth).

Convention everywhere: disparity in pixels of the left view; left (x, y) matches right (x - d, y).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["warp_right_to_left", "warp_error"]


def warp_right_to_left(right: np.ndarray, disparity: np.ndarray) -> np.ndarray:
    """Sample the right image at (x - d, y) for every left pixel (bilinear): float32, left's shape."""
    h, w = disparity.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = x - np.nan_to_num(disparity.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return cv2.remap(right.astype(np.float32), map_x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_error(left: np.ndarray, right: np.ndarray, disparity: np.ndarray, mask: np.ndarray) -> float:
    """Mean |left - warp(right)| over ``mask`` after standardising each view per channel (zero mean,
    unit std over the mask), so per-view gain and bias do not count. Lower = better match."""
    warped = warp_right_to_left(right, disparity)
    mask = mask & (np.arange(disparity.shape[1])[None, :] - np.nan_to_num(disparity) >= 0)
    a = left.astype(np.float32)[mask]
    b = warped[mask]
    a = (a - a.mean(0)) / (a.std(0) + 1e-6)
    b = (b - b.mean(0)) / (b.std(0) + 1e-6)
    return float(np.abs(a - b).mean())
