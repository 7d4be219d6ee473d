"""The dataset of a spec's split (``dataset.<split>``, stereo or mono), for train, evaluate and inference.

This module picks the dataset builder for the model type; the DataLoader over it is
:func:`skillbank.runtime.data.loaders.make_loader`. Errors are left to the runner, which names
``dataset.<split>`` in the FAILURE line (:func:`skillbank.runtime.errors.concerning`): a bad data file is
a file system error, a value the builders cannot use a configuration error.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from skillbank.runtime.errors import concerning

__all__ = ["build_split_dataset"]


def build_split_dataset(spec: Any, split: str, *, train: bool, eval_size: tuple[int, int] | None = None) -> Dataset:
    """The dataset of ``dataset.<split>``."""
    cfg = getattr(spec.dataset, split)
    with concerning(f"dataset.{split}"):
        if spec.model.is_stereo:
            from skillbank.runtime.data.stereo_datasets import build_stereo_dataset

            return build_stereo_dataset(
                cfg, max_disparity=spec.dataset.max_disparity, train=train, seed=spec.train.seed, eval_size=eval_size
            )
        from skillbank.runtime.data.mono_datasets import build_mono_dataset

        return build_mono_dataset(
            cfg,
            min_depth=spec.dataset.min_depth,
            max_depth=spec.dataset.max_depth,
            train=train,
            relative=spec.model.model_type == "RelativeDepthAnything",
            seed=spec.train.seed,
            eval_size=eval_size,
        )
