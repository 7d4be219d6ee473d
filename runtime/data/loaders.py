"""DataLoaders for a split: samplers, batch size, workers and pin_memory from the spec, the padding
collate, and per-epoch reseeding that also reaches datasets inside a ConcatDataset.

One code path serves one process and many (Lightning is told ``use_distributed_sampler=False``):

* training: :class:`EpochSampler`, a DistributedSampler (shuffle, seed ``train.seed``, drop_last)
  whose ``set_epoch`` (called by Lightning at each epoch start) also moves the dataset's augmentation
  stream to that epoch. Order and augmentation depend only on (seed, epoch, index), so a resumed run
  sees the same batches as an uninterrupted one, for any ``workers`` value;
* validation / evaluation: :class:`ShardSampler`, every ``world``-th sample from ``rank``, no padding
  and no duplicates (metrics are then summed across ranks).

With workers, the dataset and the collate are wrapped (:mod:`.worker_errors`) so that an exception
raised in a worker reaches the main process as itself, not as torch's flattened traceback.

Workers are not persistent: a persistent worker keeps its own dataset copy, so ``set_epoch`` in the
main process would never reach it and every epoch would repeat the same augmentations.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, cast

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, DistributedSampler, Sampler

from skillbank.runtime.data.stereo_datasets import stereo_collate
from skillbank.runtime.data.worker_errors import CarryErrors, carry_errors

__all__ = ["EpochSampler", "ShardSampler", "make_loader", "set_epoch"]


def set_epoch(dataset: Dataset, epoch: int) -> None:
    """Call ``set_epoch`` on the dataset, or on every part of a ConcatDataset."""
    parts = dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]
    for part in parts:
        if hasattr(part, "set_epoch"):
            part.set_epoch(epoch)


class EpochSampler(DistributedSampler):
    """DistributedSampler that also sets the dataset's augmentation epoch."""

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        set_epoch(self.dataset, epoch)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...``: each sample exactly once across ranks."""

    def __init__(self, length: int, rank: int = 0, world: int = 1) -> None:
        self.indices = list(range(rank, length, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def make_loader(
    dataset: Dataset,
    split_cfg: Any,
    *,
    train: bool,
    rank: int = 0,
    world: int = 1,
    seed: int = 0,
    batch_size: int | None = None,
) -> DataLoader:
    """DataLoader with the split's batch size, workers (at most one per CPU core) and pin_memory, the
    padding collate (:func:`stereo_collate`, stereo and mono samples) and the right sampler.

    Raises ValueError when a training split has fewer samples than one batch on every process."""
    batch = int(batch_size or split_cfg.batch_size)
    if train:
        if len(dataset) < batch * world:
            raise ValueError(f"{len(dataset)} samples is fewer than batch_size {batch} x {world} process(es)")
        sampler: Sampler = EpochSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
    else:
        sampler = ShardSampler(len(dataset), rank, world)
    workers = min(int(split_cfg.workers), os.cpu_count() or 1)
    return DataLoader(
        cast(Dataset, CarryErrors(dataset)) if workers else dataset,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        pin_memory=bool(split_cfg.pin_memory) and torch.cuda.is_available(),
        collate_fn=carry_errors(stereo_collate) if workers else stereo_collate,
        drop_last=train,
        persistent_workers=False,
    )
