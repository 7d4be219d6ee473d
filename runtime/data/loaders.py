"""DataLoaders for a split: batch size, workers and pin_memory from the spec, the padding collate,
and per-epoch reseeding that also reaches datasets inside a ConcatDataset.

Augmentation randomness is per sample, ``default_rng([seed, epoch, index])`` (see augment.py), so a
run is reproducible for any ``workers`` value; ``worker_init_fn`` only seeds the global numpy/random
state of each worker for user code that relies on it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from .stereo_datasets import stereo_collate

__all__ = ["build_dataloader", "set_epoch", "seed_worker"]


def _get(obj: Any, key: str, default: Any = None) -> Any:
    value = obj.get(key, default) if isinstance(obj, Mapping) else getattr(obj, key, default)
    return default if value is None else value


def set_epoch(dataset: Dataset, epoch: int) -> None:
    """Call ``set_epoch`` on the dataset, or on every part of a ConcatDataset."""
    parts = dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]
    for part in parts:
        if hasattr(part, "set_epoch"):
            part.set_epoch(epoch)


def seed_worker(worker_id: int) -> None:
    """Seed numpy's and Python's global RNGs of a DataLoader worker from torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_dataloader(dataset: Dataset, split_cfg: Any, *, train: bool, seed: int = 0) -> DataLoader:
    """DataLoader with the split's ``batch_size``, ``workers``, ``pin_memory``; shuffles and drops the
    last partial batch when training; pads variable sizes with :func:`stereo_collate` (stereo and
    mono samples)."""
    workers = int(_get(split_cfg, "workers", 0))
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=int(_get(split_cfg, "batch_size", 1)),
        shuffle=train,
        drop_last=train,
        num_workers=workers,
        pin_memory=bool(_get(split_cfg, "pin_memory", False)) and torch.cuda.is_available(),
        collate_fn=stereo_collate,
        worker_init_fn=seed_worker,
        generator=generator,
        # not persistent: a persistent worker keeps its own dataset copy, so set_epoch() in the main
        # process would never reach it and every epoch would repeat the same augmentations
        persistent_workers=False,
    )
