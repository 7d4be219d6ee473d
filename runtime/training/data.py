"""Datasets and DataLoaders of a spec's splits (stereo and mono), with spec-keyed errors.

The samplers and the loader itself live in :mod:`skillbank.runtime.data.loaders`; this module picks
the dataset builder for the model type and turns data problems into one-line action errors naming
``dataset.<split>``.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import DataLoader, Dataset

from ..errors import ConfigurationError, FileSystemError

__all__ = ["build_split_dataset", "make_loader"]


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


def make_loader(dataset: Dataset, split_cfg: Any, *, train: bool, **kwargs: Any) -> DataLoader:
    """:func:`skillbank.runtime.data.loaders.make_loader` with a too-small training split reported
    as a ``dataset.train_dataset`` configuration error."""
    from ..data.loaders import make_loader as data_make_loader

    try:
        return data_make_loader(dataset, split_cfg, train=train, **kwargs)
    except ValueError as exc:
        raise ConfigurationError(f"dataset.train_dataset: {exc}") from None
