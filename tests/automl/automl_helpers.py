"""Helpers of the AutoML tests: a tiny FFS study spec on synthetic pairs (imported by name: unique module)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from runtime_helpers import split, tiny_ffs_model, write_spec  # noqa: E402


def base_spec(results: Path, pairs: Path, **automl: Any) -> dict[str, Any]:
    return {
        "results_dir": str(results),
        "model": tiny_ffs_model(),
        "dataset": {"train_dataset": split(pairs, batch=2), "val_dataset": split(pairs, train=False)},
        "train": {
            "num_gpus": 0,
            "num_epochs": 1,
            "seed": 7,
            "clip_grad_norm": 1.0,
            "log_every_n_steps": 1,
            "optim": {"lr": 1e-3, "warmup_steps": 0, "lr_scheduler": "LambdaLR"},
        },
        "evaluate": {"num_gpus": 0},
        "automl": automl,
    }


def study_spec(tmp_path: Path, pairs: Path, weights: Path | None = None, **automl: Any) -> Path:
    spec = base_spec(tmp_path / "results", pairs, **automl)
    if weights is not None:
        spec["train"]["pretrained_model_path"] = str(weights)
    return write_spec(tmp_path / "spec.yaml", spec)
