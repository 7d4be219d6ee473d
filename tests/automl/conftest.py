"""Fixtures of the AutoML tests: tiny synthetic stereo pairs, a starting checkpoint and a tiny FFS study spec.

The tiny FastFoundationStereo (``tests/runtime/runtime_helpers.py``) trains an epoch of 2 pairs in a few
CPU seconds; every trial is a real ``depth_net train`` process, so the study tests are marked slow.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from runtime_helpers import split, tiny_ffs_model, write_spec  # noqa: E402


@pytest.fixture(scope="session")
def pairs(tmp_path_factory) -> Path:
    """2 synthetic 64x96 pairs with exact GT and their annotation file."""
    from skillbank.runtime.data.synthetic import generate_synthetic_stereo

    out = tmp_path_factory.mktemp("automl_pairs")
    return generate_synthetic_stereo(out, num_pairs=2, height=64, width=96, max_disparity=32, seed=5)


def base_spec(results: Path, pairs: Path, **automl: Any) -> dict[str, Any]:
    return {
        "results_dir": str(results),
        "model": tiny_ffs_model(),
        "dataset": {"train_dataset": split(pairs, batch=2), "val_dataset": split(pairs, train=False)},
        "train": {"num_gpus": 0, "num_epochs": 1, "seed": 7, "clip_grad_norm": 1.0, "log_every_n_steps": 1,
                  "optim": {"lr": 1e-3, "warmup_steps": 0, "lr_scheduler": "LambdaLR"}},
        "evaluate": {"num_gpus": 0},
        "automl": automl,
    }


@pytest.fixture(scope="session")
def start_weights(tmp_path_factory, pairs) -> Path:
    """A checkpoint of the tiny FFS after one epoch: the weights every study starts from."""
    from skillbank.runtime.runner import run_action

    folder = tmp_path_factory.mktemp("automl_start")
    spec = base_spec(folder / "results", pairs)
    spec.pop("automl")
    assert run_action("train", str(write_spec(folder / "spec.yaml", spec)), []) == 0
    return sorted((folder / "results" / "train").glob("model_epoch_*.pth"))[-1]


def study_spec(tmp_path: Path, pairs: Path, weights: Path | None = None, **automl: Any) -> Path:
    spec = base_spec(tmp_path / "results", pairs, **automl)
    if weights is not None:
        spec["train"]["pretrained_model_path"] = str(weights)
    return write_spec(tmp_path / "spec.yaml", spec)
