"""Drift of a deploy artefact against its reference on one real input, and the gate on it.

Every export and engine build runs the reference and the artefact on the same pair and writes
``drift.json`` beside its status file:

* ``max_abs_px`` / ``mean_abs_px``: max and mean ``|artefact - reference|`` over the output (pixels of
  disparity; mono: depth units);
* ``bp2_pct``: stereo only, the % of pixels where they differ by more than 2 px (the bp2 metric with the
  reference as ground truth);
* ``accepted`` and ``max_drift_px`` (the limit), ``artefact`` (where the file now is), ``reference``
  (what it was compared with) and ``input`` (which pair, at which size).

The pair is the user's (``<action>.drift_left`` / ``drift_right``, resized bilinearly to the artefact's
size) or one the synthetic generator renders at that size (textured slanted planes, seed 0). Both go
through the training data's normalisation (``(rgb / 255 - ImageNet mean) / std``).

Failure policy (:func:`finalize`): the artefact is built under a temporary name; if the drift is above the
limit it is renamed ``<stem>.rejected<suffix>`` (kept for inspection, never under the name a later step
would pick up), ``drift.json`` says ``accepted: false`` and the action fails with one line. An older file
under the requested name is left as it was.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from skillbank.atomic import atomic_write, commit
from skillbank.runtime.errors import ActionError, ConfigurationError, FileSystemError

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class DriftError(ActionError):
    """The artefact does not reproduce its reference within the limit."""

    prefix = "Export error"


@dataclass
class DriftReport:
    max_abs_px: float
    mean_abs_px: float
    bp2_pct: float | None
    max_drift_px: float
    accepted: bool
    reference: str
    input: str
    artefact: str = ""

    def kpi(self) -> dict[str, float]:
        kpi = {"drift_max_px": self.max_abs_px, "drift_mean_px": self.mean_abs_px}
        if self.bp2_pct is not None:
            kpi["drift_bp2"] = self.bp2_pct
        return kpi


def normalise(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float32, ImageNet-normalised."""
    x = (rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    if rgb.shape[:2] == (height, width):
        return rgb
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)


def drift_inputs(
    *, stereo: bool, height: int, width: int, left: str | None, right: str | None, key: str
) -> tuple[list[np.ndarray], str]:
    """The drift pair as normalised (1,3,H,W) float32 arrays, and a line saying what it is.

    ``key`` is the spec section (``export`` or ``gen_trt_engine``) named in errors."""
    from skillbank.runtime.data.io import read_image_rgb

    if left:
        if stereo and not right:
            raise ConfigurationError(f"{key}.drift_right: required with {key}.drift_left for a stereo network")
        paths = [left, right] if stereo else [left]
        images = []
        for name, path in zip(("drift_left", "drift_right"), paths, strict=False):
            if not Path(path).is_file():
                raise FileSystemError(f"{key}.{name}: file not found: {path}")
            try:
                images.append(_resize(read_image_rgb(path), height, width))
            except Exception as exc:  # unreadable image: one line naming the key
                raise FileSystemError(f"{key}.{name}: cannot read {path}: {exc}") from None
        what = " + ".join(str(p) for p in paths)
    else:
        from skillbank.runtime.data.synthetic import render_stereo_pair

        pair = render_stereo_pair(np.random.default_rng(0), height, width, max(2.0, min(96.0, width / 8)))
        images = [pair.left, pair.right] if stereo else [pair.left]
        what = "synthetic pair (seed 0)"
    return [normalise(im) for im in images], f"{what} at {height}x{width}"


def measure(reference: np.ndarray, candidate: np.ndarray, *, stereo: bool, max_drift_px: float, reference_name: str,
            input_name: str) -> DriftReport:
    """Compare two outputs of the same input (any shape, same size)."""
    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(candidate, dtype=np.float64)
    if ref.shape != out.shape:
        raise ActionError(f"drift check: artefact output {list(out.shape)} != reference {list(ref.shape)}")
    diff = np.abs(out - ref)
    finite = bool(np.isfinite(diff).all())
    max_abs = float(diff.max()) if finite else float("inf")
    mean_abs = float(diff.mean()) if finite else float("inf")
    bp2 = float((~(diff <= 2.0)).mean() * 100.0) if stereo else None
    return DriftReport(max_abs, mean_abs, bp2, max_drift_px, max_abs <= max_drift_px, reference_name, input_name)


def rejected_name(path: Path) -> Path:
    """``model.pt2`` -> ``model.rejected.pt2``."""
    return path.with_name(f"{path.stem}.rejected{path.suffix}")


def finalize(tmp: Path, target: Path, report: DriftReport, results_dir: Path, *, key: str) -> Path:
    """Move the artefact built at ``tmp`` to ``target`` (accepted) or to its rejected name, write
    ``<results_dir>/drift.json`` atomically, and raise :class:`DriftError` (one line) when rejected."""
    final = target if report.accepted else rejected_name(target)
    commit(tmp, final)
    report.artefact = str(final)
    atomic_write(results_dir / "drift.json", json.dumps(asdict(report), indent=2) + "\n")
    if not report.accepted:
        raise DriftError(
            f"{key}.max_drift_px: {target.name} differs from {report.reference} by up to {report.max_abs_px:.3g} px "
            f"(limit {report.max_drift_px}); kept as {final.name}, not deployable (drift.json)"
        )
    return final
