"""Datasets, samplers and DataLoaders of a spec's splits (stereo and mono).

Samplers are built here, not by Lightning (``use_distributed_sampler=False``), so that one code path
serves one process and many:

* training: :class:`EpochSampler`, a DistributedSampler (shuffle, seed ``train.seed``, drop_last)
  whose ``set_epoch`` (called by Lightning at each epoch start) also moves the dataset's augmentation
  stream to that epoch. Order and augmentation depend only on (seed, epoch), so a resumed run sees
  the same batches as an uninterrupted one;
* validation / evaluation: :class:`ShardSampler`, every ``world``-th sample from ``rank``, no padding
  and no duplicates (metrics are then summed across ranks).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, DistributedSampler, Sampler

from ..errors import ConfigurationError, FileSystemError

__all__ = ["EpochSampler", "ShardSampler", "build_split_dataset", "make_loader", "set_dataset_epoch"]


def set_dataset_epoch(dataset: Dataset, epoch: int) -> None:
    """Call ``set_epoch`` on a dataset or on every member of a ConcatDataset."""
    members = dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]
    for member in members:
        if hasattr(member, "set_epoch"):
            member.set_epoch(epoch)


class EpochSampler(DistributedSampler):
    """DistributedSampler that also sets the dataset's augmentation epoch."""

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        set_dataset_epoch(self.dataset, epoch)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...``: each sample exactly once across ranks."""

    def __init__(self, length: int, rank: int = 0, world: int = 1) -> None:
        self.indices = list(range(rank, length, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def build_split_dataset(spec: Any, split: str, *, train: bool, eval_size: tuple[int, int] | None = None) -> Dataset:
    """The dataset of ``dataset.<split>``; data-file problems become one-line FileSystemErrors."""
    from ..data.errors import AnnotationError, DataFileError

    cfg = getattr(spec.dataset, split)
    try:
        if spec.model.is_stereo:
            from ..data.stereo_datasets import build_stereo_dataset

            return build_stereo_dataset(
                cfg, max_disparity=spec.dataset.max_disparity, train=train, seed=spec.train.seed, eval_size=eval_size
            )
        from ..data.mono_datasets import build_mono_dataset

        return build_mono_dataset(
            cfg,
            min_depth=spec.dataset.min_depth,
            max_depth=spec.dataset.max_depth,
            train=train,
            relative=spec.model.model_type == "RelativeDepthAnything",
            seed=spec.train.seed,
            eval_size=eval_size,
        )
    except (AnnotationError, DataFileError) as exc:
        raise FileSystemError(f"dataset.{split}: {exc}") from None
    except ValueError as exc:
        raise ConfigurationError(f"dataset.{split}: {exc}") from None


def make_loader(
    dataset: Dataset, split_cfg: Any, *, train: bool, rank: int = 0, world: int = 1, seed: int = 0,
    batch_size: int | None = None,
) -> DataLoader:
    """DataLoader with padding collate, the right sampler and at most one worker per CPU core."""
    from ..data.stereo_datasets import stereo_collate

    batch = int(batch_size or split_cfg.batch_size)
    if train:
        if len(dataset) < batch * world:
            raise ConfigurationError(
                f"dataset.train_dataset: {len(dataset)} samples is fewer than batch_size {batch} x {world} process(es)"
            )
        sampler: Sampler = EpochSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
    else:
        sampler = ShardSampler(len(dataset), rank, world)
    workers = min(int(split_cfg.workers), os.cpu_count() or 1)
    return DataLoader(
        dataset,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        pin_memory=bool(split_cfg.pin_memory) and torch.cuda.is_available(),
        collate_fn=stereo_collate,
        drop_last=train,
        persistent_workers=False,
    )
