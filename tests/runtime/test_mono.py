"""Mono (DepthAnythingV2) train + evaluate on CPU: SiLog (metric) loss, depth metrics under val/."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_helpers import read_status, write_spec

from skillbank.runtime.data.io import read_pfm, write_pfm
from skillbank.runtime.runner import run_action


@pytest.fixture
def mono_annotation(tmp_path, synthetic_pairs):
    """Metric depth from the synthetic disparity (depth = 40 / disparity metres) beside each left image."""
    root = synthetic_pairs.parent
    lines = []
    for left in sorted((root / "left").glob("*.png")):
        disparity = read_pfm(root / "disparity" / f"{left.stem}.pfm")
        depth = np.where(disparity > 0, 40.0 / np.maximum(disparity, 1e-3), np.inf).astype(np.float32)
        write_pfm(tmp_path / "depth" / f"{left.stem}.pfm", depth)
        lines.append(f"{left} {tmp_path / 'depth' / f'{left.stem}.pfm'}")
    annotation = tmp_path / "mono.txt"
    annotation.write_text("\n".join(lines) + "\n")
    return annotation


def test_metric_mono_trains_and_evaluates(tmp_path, mono_annotation):
    split = {"data_sources": [{"dataset_name": "GenericMonoDataset", "data_file": str(mono_annotation)}],
             "batch_size": 2, "workers": 0, "pin_memory": False, "augmentation": {"crop_size": [56, 84]}}
    spec = write_spec(tmp_path / "spec.yaml", {
        "results_dir": str(tmp_path / "results"),
        "model": {"model_type": "MetricDepthAnything", "encoder": "vits"},
        "dataset": {"max_depth": 50.0, "train_dataset": split, "test_dataset": {**split, "batch_size": 1}},
        "train": {"num_gpus": 0, "num_epochs": 1, "optim": {"lr": 1e-5, "warmup_steps": 0}},
        "evaluate": {"num_gpus": 0, "input_height": 56, "input_width": 84},
    })
    assert run_action("train", str(spec), []) == 0
    train = read_status(tmp_path / "results" / "train")
    assert [e["status"] for e in train] == ["STARTED", "RUNNING", "SUCCESS"]
    assert np.isfinite(train[1]["kpi"]["train_loss"]) and train[1]["kpi"]["train_loss"] > 0

    assert run_action("evaluate", str(spec), [f"evaluate.checkpoint={tmp_path / 'results' / 'train'}"]) == 0
    kpi = read_status(tmp_path / "results" / "evaluate")[-1]["kpi"]
    assert {"val/abs_rel", "val/rmse", "val/d1", "val/d2", "val/d3"} <= set(kpi)
    assert 0 <= kpi["val/d1"] <= kpi["val/d2"] <= kpi["val/d3"] <= 100

    annotation = tmp_path / "images.txt"  # inference reads images without depth
    annotation.write_text("".join(line.split()[0] + "\n" for line in mono_annotation.read_text().splitlines()))
    overrides = [f"inference.checkpoint={tmp_path / 'results' / 'train'}", "inference.num_gpus=0",
                 "inference.save_raw_pfm=true", "dataset.infer_dataset.workers=0",
                 f"dataset.infer_dataset.data_sources=[{{dataset_name: GenericMonoDataset, data_file: {annotation}}}]"]
    assert run_action("inference", str(spec), overrides) == 0
    out = tmp_path / "results" / "inference"
    assert len(list(out.glob("*.png"))) == len(list(out.glob("*.pfm"))) == 4
    depth = read_pfm(sorted(out.glob("*.pfm"))[0])
    assert depth.shape == (80, 112) and (depth > 0).all() and (depth <= 50.0).all()  # metric head: (0, max_depth]
