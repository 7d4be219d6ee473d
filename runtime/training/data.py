"""Datasets and DataLoaders of a spec's splits (stereo and mono).

The samplers and the loader itself live in :mod:`skillbank.runtime.data.loaders`; this module picks
the dataset builder for the model type. Errors are left to the runner, which names ``dataset.<split>``
in the FAILURE line (:func:`..errors.concerning`): a bad data file is a file system error, a value the
builders cannot use a configuration error.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import DataLoader, Dataset

from skillbank.runtime.errors import concerning

__all__ = ["build_split_dataset", "make_loader"]


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


def make_loader(dataset: Dataset, split_cfg: Any, *, train: bool, **kwargs: Any) -> DataLoader:
    """:func:`skillbank.runtime.data.loaders.make_loader`; a training split smaller than one batch is
    reported against ``dataset.train_dataset``."""
    from skillbank.runtime.data.loaders import make_loader as data_make_loader

    with concerning("dataset.train_dataset"):
        return data_make_loader(dataset, split_cfg, train=train, **kwargs)
