"""Fixtures of the runtime action tests: synthetic pairs and a tiny FastFoundationStereo train spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from runtime_helpers import split, tiny_ffs_model


@pytest.fixture(scope="session")
def synthetic_pairs(tmp_path_factory) -> Path:
    """4 synthetic 80x112 pairs with exact GT (disparity < 40) and their annotation file."""
    from skillbank.runtime.data.synthetic import generate_synthetic_stereo

    out = tmp_path_factory.mktemp("synthetic")
    return generate_synthetic_stereo(out, num_pairs=4, height=80, width=112, max_disparity=40, seed=3)


@pytest.fixture
def tiny_spec(tmp_path, synthetic_pairs) -> dict[str, Any]:
    """A full tiny FFS train spec (dict) on the synthetic pairs, results under tmp_path/results."""
    return {
        "results_dir": str(tmp_path / "results"),
        "model": tiny_ffs_model(),
        "dataset": {
            "train_dataset": split(synthetic_pairs, batch=2),
            "val_dataset": split(synthetic_pairs, train=False),
        },
        "train": {"num_gpus": 0, "num_epochs": 2, "seed": 7, "clip_grad_norm": 1.0,
                  "optim": {"lr": 1e-3, "warmup_steps": 0, "lr_scheduler": "LambdaLR"}},
        "evaluate": {"num_gpus": 0},
        "inference": {"num_gpus": 0},
    }
