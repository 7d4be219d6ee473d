"""Stereo dataset classes, their registry, the split builder and a padding collate function.

Each class reads one annotation file (``left right [disparity [nocc_mask]]``, see annotations.py)
and decodes its disparity with its own encoding:

=================== =========== ========================================== =====================
class               encoding    file                                       needs GT
=================== =========== ========================================== =====================
FSD                 fsd         RGB PNG (R*255*255 + G*255 + B) / 1000     yes (3-4 columns)
IsaacRealDataset    auto        PFM / .npy float, 16-bit PNG / 256         yes
Crestereo           crestereo   uint16 PNG / 32                            yes
Middlebury          pfm         float PFM, inf = unknown                   yes
Eth3d               pfm         float PFM, inf = unknown                   yes
Kitti               kitti       uint16 PNG / 256, 0 = invalid              yes
GenericDataset      auto        by extension (.pfm, .npy, .png = KITTI)    no (2-4 columns)
=================== =========== ========================================== =====================

Validity rule (all classes): ``valid = finite & gt > 0 & gt < max_disparity``. A 4th column names a
non-occlusion mask: pixels where mask != 255 are excluded from ``nocc`` (``nocc = valid & mask == 255``).

Sample contract (a dict) returned by ``__getitem__``:

* ``left``, ``right``: float32 tensors (3, H, W), normalised with input_mean / input_std
* ``disparity``: float32 (1, H, W), 0 where unknown; the key is absent when the line has no GT
* ``valid``: bool (1, H, W) (present with ``disparity``); ``nocc``: bool (1, H, W) when a mask exists
* ``left_path``, ``right_path``: str; ``orig_size``: (H, W) of the files before any transform
* ``index``: int, position in the dataset

Users add classes with ``@register_stereo_dataset`` (names are case-insensitive)::

    @register_stereo_dataset
    class MyRig(StereoDataset):
        encoding = "crestereo"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from skillbank.runtime.data import io
from skillbank.runtime.data.annotations import StereoRecord, parse_stereo_annotation
from skillbank.runtime.data.augment import AugmentConfig, EvalTransform, StereoAugmentor
from skillbank.runtime.data.class_registry import ClassRegistry
from skillbank.runtime.data.seeded import SeededRecordDataset

__all__ = [
    "StereoDataset",
    "register_stereo_dataset",
    "get_stereo_dataset_class",
    "registered_stereo_datasets",
    "build_stereo_dataset",
    "stereo_collate",
    "valid_disparity_mask",
]

_REGISTRY: ClassRegistry[type[StereoDataset]] = ClassRegistry("stereo")


def valid_disparity_mask(disparity: np.ndarray, max_disparity: float) -> np.ndarray:
    """The one validity rule: finite & gt > 0 & gt < max_disparity."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(disparity) & (disparity > 0) & (disparity < max_disparity)


class StereoDataset(SeededRecordDataset):
    """Base class: one annotation file, one disparity encoding.

    ``transform`` is a callable ``(sample_dict_of_numpy, rng) -> dict`` (StereoAugmentor or
    EvalTransform); randomness is seeded per sample from ``(seed, epoch, index)``.
    """

    encoding: str = "auto"
    requires_gt: bool = True
    sparse_gt: bool = False  # True: GT is scattered points (LiDAR); resizes move points, never copy them
    name: str = "StereoDataset"

    def __init__(
        self,
        data_file: str,
        *,
        max_disparity: float,
        transform: Callable[[dict, np.random.Generator], dict] | None = None,
        seed: int | None = None,
        check_files: bool = True,
    ) -> None:
        hint = (
            f"{self.name} needs ground truth: 'left right disparity [nocc_mask]'; "
            "use GenericDataset for pairs without it"
            if self.requires_gt
            else ""
        )
        self.data_file = str(data_file)
        self.records: list[StereoRecord] = parse_stereo_annotation(
            data_file, min_columns=3 if self.requires_gt else 2, check_files=check_files, hint=hint
        )
        self.max_disparity = float(max_disparity)
        self.transform = transform or EvalTransform(AugmentConfig(), max_disparity=max_disparity)
        self.init_seed(seed)


    def decode_disparity(self, path: str) -> np.ndarray:
        """Disparity file -> float32 (H, W) pixels (override for a custom encoding)."""
        return io.decode_disparity(path, self.encoding)

    def load(self, index: int) -> dict[str, Any]:
        """Read one sample as numpy arrays, before any transform."""
        rec = self.records[index]
        left, right = io.read_image_rgb(rec.left), io.read_image_rgb(rec.right)
        if left.shape != right.shape:
            raise io.DataFileError(f"{rec.right}: size {right.shape[:2]} differs from left image {left.shape[:2]}")
        sample: dict[str, Any] = {"left": left, "right": right}
        if rec.disparity is not None:
            disp = self.decode_disparity(str(rec.disparity))
            if disp.shape != left.shape[:2]:
                raise io.DataFileError(f"{rec.disparity}: size {disp.shape} differs from left image {left.shape[:2]}")
            valid = valid_disparity_mask(disp, self.max_disparity)
            sample["disparity"] = np.where(valid, disp, 0).astype(np.float32)
            sample["valid"] = valid
            sample["sparse"] = self.sparse_gt
            if rec.nocc is not None:
                mask = io.read_mask(rec.nocc)
                if mask.shape != disp.shape:
                    raise io.DataFileError(f"{rec.nocc}: size {mask.shape} differs from left image {disp.shape}")
                sample["nocc"] = valid & (mask == 255)
        return sample

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        sample = self.load(index)
        orig_size = tuple(int(v) for v in sample["left"].shape[:2])
        rng = self.rng(index)
        out = self.transform(sample, rng)
        result: dict[str, Any] = {
            "left": torch.from_numpy(np.ascontiguousarray(out["left"])),
            "right": torch.from_numpy(np.ascontiguousarray(out["right"])),
        }
        for key in ("disparity", "valid", "nocc"):
            if out.get(key) is not None:
                result[key] = torch.from_numpy(np.ascontiguousarray(out[key]))[None]
        result.update(left_path=str(rec.left), right_path=str(rec.right), orig_size=orig_size, index=index)
        return result


def register_stereo_dataset(cls: type[StereoDataset] | None = None, *, name: str | None = None):
    """Class decorator: register a StereoDataset subclass under its ``name`` (case-insensitive).

    Use bare (``@register_stereo_dataset``) or with an explicit name
    (``@register_stereo_dataset(name="MyRig")``).
    """

    return _REGISTRY.register(cls, name=name)


def registered_stereo_datasets() -> list[str]:
    """Names of the registered stereo dataset classes."""
    return _REGISTRY.names()


def get_stereo_dataset_class(name: str) -> type[StereoDataset]:
    """Look a class up by name, case-insensitively; unknown names list the known ones."""
    return _REGISTRY.get(name)


@register_stereo_dataset
class FSD(StereoDataset):
    """Foundation Stereo Dataset: disparity PNG with RGB-packed millipixels."""

    encoding = "fsd"


@register_stereo_dataset
class IsaacRealDataset(StereoDataset):
    """Isaac real captures: float disparity (PFM / .npy) or 16-bit PNG / 256, chosen by extension."""

    encoding = "auto"


@register_stereo_dataset
class Crestereo(StereoDataset):
    """CREStereo synthetic data: uint16 PNG / 32."""

    encoding = "crestereo"


@register_stereo_dataset
class Middlebury(StereoDataset):
    """Middlebury: float PFM, inf = unknown."""

    encoding = "pfm"


@register_stereo_dataset
class Eth3d(StereoDataset):
    """ETH3D two-view: float PFM, inf = unknown."""

    encoding = "pfm"


@register_stereo_dataset
class Kitti(StereoDataset):
    """KITTI 2012/2015: uint16 PNG / 256, 0 = invalid (sparse LiDAR)."""

    encoding = "kitti"
    sparse_gt = True


@register_stereo_dataset
class GenericDataset(StereoDataset):
    """Any data: 2 (no GT), 3 or 4 columns; encoding by extension (.pfm, .npy, 16-bit .png / 256)."""

    encoding = "auto"
    requires_gt = False


# ------------------------------------------------------------------------------------------- builder
def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def build_stereo_dataset(
    split_cfg: Any,
    *,
    max_disparity: int,
    train: bool,
    seed: int | None = None,
    eval_size: tuple[int, int] | None = None,
    eval_mode: str = "resize",
) -> Dataset:
    """Build the dataset of one split: one class per data source, concatenated when several.

    ``split_cfg`` has ``data_sources`` (objects or dicts with ``dataset_name``, ``data_file``) and
    ``augmentation``. ``train=True`` uses the random StereoAugmentor; otherwise the deterministic
    EvalTransform (``eval_size`` (H, W) with ``eval_mode`` 'resize' or 'crop', or full size).
    Every annotation file is checked when built; all problems of one file come in one error.
    """
    sources = _get(split_cfg, "data_sources") or []
    if not sources:
        raise ValueError("data_sources: empty; give at least one {dataset_name, data_file}")
    config = AugmentConfig.from_spec(_get(split_cfg, "augmentation"))
    if train:
        transform: Callable = StereoAugmentor(config, max_disparity=max_disparity)
    else:
        transform = EvalTransform(config, size=eval_size, mode=eval_mode, max_disparity=max_disparity)
    datasets = [
        get_stereo_dataset_class(_get(src, "dataset_name"))(
            _get(src, "data_file"), max_disparity=max_disparity, transform=transform, seed=seed
        )
        for src in sources
    ]
    return datasets[0] if len(datasets) == 1 else ConcatDataset(datasets)


def stereo_collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Collate samples of possibly different sizes: tensors are padded at the bottom/right to the
    largest H and W in the batch (images with 0, ``valid``/``nocc`` with False, so padding never
    counts in a loss or metric). ``orig_size`` holds each sample's file size and ``size`` its
    size before padding (crop ``[:h, :w]`` to undo). Only keys present in every sample are kept: a
    batch mixing lines with and without a mask (or GT) has no ``nocc`` (or ``disparity``/``valid``);
    use batch_size 1 for such files. Works for mono samples too (sizes taken from ``image``)."""
    ref = "left" if "left" in batch[0] else "image"
    heights = [int(s[ref].shape[-2]) for s in batch]
    widths = [int(s[ref].shape[-1]) for s in batch]
    height, width = max(heights), max(widths)
    out: dict[str, Any] = {}
    common = [key for key in batch[0] if all(key in s for s in batch)]
    for key in common:
        values = [s[key] for s in batch]
        if isinstance(values[0], torch.Tensor):
            padded = [torch.nn.functional.pad(v, (0, width - v.shape[-1], 0, height - v.shape[-2])) for v in values]
            out[key] = torch.stack(padded)
        elif key == "index":
            out[key] = torch.tensor(values)
        else:
            out[key] = list(values)
    out["size"] = list(zip(heights, widths, strict=True))
    return out
