"""A train request routed to AutoML runs as a job through `skillbank run`'s job store: its trials are child
jobs of it, and a following evaluate takes the best trial's checkpoint."""

from __future__ import annotations

import pytest
import yaml
from runtime_helpers import tiny_ffs_model

pytestmark = pytest.mark.slow


def test_an_automl_train_job_runs_its_trials_as_child_jobs_and_feeds_evaluate(tmp_path, pairs):
    pytest.importorskip("sqlalchemy")
    from skillbank.sdk import Client

    overrides = {
        "model": tiny_ffs_model(),
        "dataset": {
            "max_disparity": 64,
            "train_dataset": {"batch_size": 2, "workers": 0, "augmentation": {"crop_size": [64, 96]}},
            "val_dataset": {"workers": 0, "augmentation": {"crop_size": [64, 96]}},
            "test_dataset": {"workers": 0},
        },
        "train": {"num_gpus": 0, "precision": "fp32", "optim": {"warmup_steps": 0}},
        "evaluate": {"num_gpus": 0},
        "automl": {"automl_algorithm": "random", "automl_max_recommendations": 2, "automl_max_concurrent": 1},
    }
    client = Client(tmp_path / "ws", idle_exit_s=5)
    train, evaluate = client.submit(
        f"train fast stereo on {pairs}, validate on {pairs}, 1 epoch, then evaluate it", overrides=overrides
    )
    assert train.route == "automl"
    train, evaluate = client.wait([train.id, evaluate.id], timeout=1200)
    assert train.status == "COMPLETE", (train.message, client.logs(train.id))
    assert train.results_dir.endswith("/automl") and train.kpi.get("val/epe") is not None
    trials = [j for j in client.jobs() if j.parent_job_id == train.id and j.route == "automl_trial"]
    assert len(trials) == 2 and all(j.action == "train" and j.status == "COMPLETE" for j in trials)
    assert sorted(j.results_dir.rsplit("/", 1)[-1] for j in trials) == ["trial_000", "trial_001"]
    assert evaluate.status == "COMPLETE", evaluate.message
    spec = yaml.safe_load(evaluate.spec)
    assert "/automl/best/model_epoch_" in spec["evaluate"]["checkpoint"]
