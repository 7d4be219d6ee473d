"""The base of the annotation-file datasets: one record a sample, randomness keyed by (seed, epoch, index).

Keying each sample's random stream by ``(seed, epoch, index)`` makes augmentation independent of the
number of DataLoader workers and processes, and lets a resumed run see exactly the batches of an
uninterrupted one (``set_epoch`` is called by the sampler at each epoch start).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


class SeededRecordDataset(Dataset):
    """``records`` (one per sample) plus a per-sample generator; subclasses fill ``records``."""

    records: list[Any]

    def init_seed(self, seed: int | None) -> None:
        """``seed`` None: derive one from torch's initial seed (so workers of one run agree)."""
        self.seed = int(torch.initial_seed() % 2**63) if seed is None else int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Change the random stream (call once per epoch for fresh augmentations)."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        """The random generator of sample ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, index])
