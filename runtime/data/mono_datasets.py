"""Mono (single-image depth) datasets: annotation lines ``image [depth]``.

================== =========== =============================================== ===============
class              encoding    depth file                                      target
================== =========== =============================================== ===============
NYUDv2             nyu         uint16 PNG / 1000 (metres), 0 = invalid         metric depth
GenericMonoDataset auto        .png uint16/1000, .pfm / .npy float metres      metric depth
MetricMonoDataset  auto        as GenericMonoDataset                           metric depth
RelativeMonoDataset auto       as GenericMonoDataset                           inverse depth
================== =========== =============================================== ===============

Validity: ``valid = finite & min_depth < depth < max_depth`` (strict at both ends; 0 is never valid).
``build_mono_dataset(..., relative=True)`` makes every class produce the relative target.

Sample contract: ``image`` float32 (3, H, W) normalised; when the line has depth: ``depth`` float32
(1, H, W) metres (0 where invalid), ``target`` float32 (1, H, W) = depth (metric) or 1/depth
(relative, inverse depth as DepthAnything predicts; 0 where invalid), ``valid`` bool (1, H, W);
``image_path`` str, ``orig_size`` (H, W), ``index`` int.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from skillbank.runtime.data import io
from skillbank.runtime.data.annotations import MonoRecord, parse_mono_annotation
from skillbank.runtime.data.augment import AugmentConfig, MonoAugmentor, normalize
from skillbank.runtime.data.class_registry import ClassRegistry
from skillbank.runtime.data.seeded import SeededRecordDataset

__all__ = [
    "MonoDataset",
    "register_mono_dataset",
    "get_mono_dataset_class",
    "build_mono_dataset",
    "MonoEvalTransform",
]

_REGISTRY: ClassRegistry[type[MonoDataset]] = ClassRegistry("mono")


class MonoEvalTransform:
    """Deterministic: optional resize of the image to ``size`` (H, W) (depth nearest), normalise."""

    def __init__(self, config: AugmentConfig, size: tuple[int, int] | None = None) -> None:
        self.size = size
        self.mean = np.asarray(config.input_mean, dtype=np.float32)
        self.std = np.asarray(config.input_std, dtype=np.float32)

    def __call__(self, sample: Mapping[str, Any], rng: np.random.Generator | None = None) -> dict[str, Any]:
        s = dict(sample)
        if self.size is not None and tuple(self.size) != s["image"].shape[:2]:
            wh = (int(self.size[1]), int(self.size[0]))
            s["image"] = cv2.resize(s["image"], wh, interpolation=cv2.INTER_LINEAR)
            if s.get("depth") is not None:
                s["depth"] = cv2.resize(s["depth"], wh, interpolation=cv2.INTER_NEAREST)
                s["valid"] = cv2.resize(s["valid"].astype(np.uint8), wh, interpolation=cv2.INTER_NEAREST) > 0
        s["image"] = normalize(s["image"], self.mean, self.std)
        return s


class MonoDataset(SeededRecordDataset):
    """Base class: one ``image [depth]`` annotation file, one depth encoding."""

    encoding: str = "auto"
    relative: bool = False
    requires_depth: bool = False
    name: str = "MonoDataset"

    def __init__(
        self,
        data_file: str,
        *,
        min_depth: float,
        max_depth: float,
        transform: Callable[[dict, np.random.Generator], dict] | None = None,
        relative: bool | None = None,
        seed: int | None = None,
        check_files: bool = True,
    ) -> None:
        hint = f"{self.name} needs 'image depth' lines" if self.requires_depth else ""
        self.data_file = str(data_file)
        self.records: list[MonoRecord] = parse_mono_annotation(
            data_file, min_columns=2 if self.requires_depth else 1, check_files=check_files, hint=hint
        )
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.relative = self.relative if relative is None else bool(relative)
        self.transform = transform or MonoEvalTransform(AugmentConfig())
        self.init_seed(seed)


    def load(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        sample: dict[str, Any] = {"image": io.read_image_rgb(rec.image)}
        if rec.depth is not None:
            depth = io.decode_depth(rec.depth, self.encoding)
            if depth.shape != sample["image"].shape[:2]:
                raise io.DataFileError(
                    f"{rec.depth}: size {depth.shape} differs from image {sample['image'].shape[:2]}"
                )
            with np.errstate(invalid="ignore"):
                valid = np.isfinite(depth) & (depth > self.min_depth) & (depth < self.max_depth)
            sample["depth"] = np.where(valid, depth, 0).astype(np.float32)
            sample["valid"] = valid
        return sample

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.load(index)
        orig_size = tuple(int(v) for v in sample["image"].shape[:2])
        out = self.transform(sample, self.rng(index))
        result: dict[str, Any] = {"image": torch.from_numpy(np.ascontiguousarray(out["image"]))}
        if out.get("depth") is not None:
            depth, valid = out["depth"], out["valid"] & (out["depth"] > 0)
            target = np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0) if self.relative else depth
            result["depth"] = torch.from_numpy(np.ascontiguousarray(np.where(valid, depth, 0), dtype=np.float32))[None]
            result["target"] = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32))[None]
            result["valid"] = torch.from_numpy(np.ascontiguousarray(valid))[None]
        result.update(image_path=str(self.records[index].image), orig_size=orig_size, index=index)
        return result


def register_mono_dataset(cls: type[MonoDataset] | None = None, *, name: str | None = None):
    """Class decorator: register a MonoDataset subclass (case-insensitive name)."""
    return _REGISTRY.register(cls, name=name)


def get_mono_dataset_class(name: str) -> type[MonoDataset]:
    return _REGISTRY.get(name)


@register_mono_dataset
class NYUDv2(MonoDataset):
    """NYU Depth v2: depth uint16 PNG / 1000 (metres)."""

    encoding = "nyu"
    requires_depth = True


@register_mono_dataset
class GenericMonoDataset(MonoDataset):
    """Any ``image [depth]`` file; depth by extension (.png uint16/1000, .pfm, .npy metres)."""


@register_mono_dataset
class MetricMonoDataset(MonoDataset):
    """Metric target (metres)."""


@register_mono_dataset
class RelativeMonoDataset(MonoDataset):
    """Relative target: inverse depth (what DepthAnything's relative head predicts)."""

    relative = True


def _get(obj: Any, key: str, default: Any = None) -> Any:
    return obj.get(key, default) if isinstance(obj, Mapping) else getattr(obj, key, default)


def build_mono_dataset(
    split_cfg: Any,
    *,
    min_depth: float,
    max_depth: float,
    train: bool,
    relative: bool | None = None,
    seed: int | None = None,
    eval_size: tuple[int, int] | None = None,
) -> Dataset:
    """Build one split's mono dataset (ConcatDataset when several data_sources).

    ``relative`` None keeps each class's own target; True/False forces inverse/metric depth
    (the runtime passes ``model_type == 'RelativeDepthAnything'``).
    """
    sources = _get(split_cfg, "data_sources") or []
    if not sources:
        raise ValueError("data_sources: empty; give at least one {dataset_name, data_file}")
    config = AugmentConfig.from_spec(_get(split_cfg, "augmentation"))
    transform: Callable = MonoAugmentor(config) if train else MonoEvalTransform(config, eval_size)
    datasets = [
        get_mono_dataset_class(_get(src, "dataset_name"))(
            _get(src, "data_file"),
            min_depth=min_depth,
            max_depth=max_depth,
            transform=transform,
            relative=relative,
            seed=seed,
        )
        for src in sources
    ]
    return datasets[0] if len(datasets) == 1 else ConcatDataset(datasets)
