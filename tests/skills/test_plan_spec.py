"""The planned spec: template + key_defaults + spec_params + data + overrides, validated; words parsed."""

from __future__ import annotations

from pathlib import Path

import pytest
from skilltest_helpers import FFS

from skillbank.registry import Registry
from skillbank.request import parse_text
from skillbank.router import plan
from skillbank.specs import FFS_BP2_WIDTHS, load_spec


def test_ffs_train_spec_is_complete_bp2_and_loads_with_the_spec_models(registry: Registry, tmp_path: Path) -> None:
    import yaml

    p = plan(
        "fine-tune fast stereo on /data/kitti with bp2 /ckpt/model_best_bp2_serialize.pth, results in /runs/a", registry
    )
    model = p.spec["model"]
    assert model["model_type"] == "FastFoundationStereo"
    assert {k: model[k] for k in FFS_BP2_WIDTHS} == FFS_BP2_WIDTHS
    assert (model["max_disparity"], model["valid_iters"], model["gwc_feature_normalize"]) == (192, 8, True)
    assert p.spec["dataset"]["max_disparity"] == 192
    assert p.spec["dataset"]["train_dataset"]["augmentation"]["crop_size"] == [320, 736]
    assert p.spec["train"]["pretrained_model_path"] == "/ckpt/model_best_bp2_serialize.pth"
    assert p.spec["dataset"]["val_dataset"]["data_sources"] == []  # optional split, not given
    assert p.inputs["dataset.train_dataset.data_sources"][0]["dataset_name"] == "Kitti"
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(p.spec), encoding="utf-8")
    spec = load_spec(path)
    assert spec.model.gru_hidden == 60 and spec.train.pretrained_model_path == "/ckpt/model_best_bp2_serialize.pth"


def test_words_give_numbers_paths_and_next_steps() -> None:
    call = parse_text(
        "fine-tune fast stereo on my KITTI pairs at /data/kitti, validate on /data/kitti_val, no HPO, lr 1e-5, "
        "3 epochs, batch size 2, 2 gpus, results in /runs/x, then build an fp16 engine"
    )
    assert (call.skill, call.action, call.next_actions) == (FFS, "train", ["gen_trt_engine"])
    assert call.spec_overrides == {
        "train.optim.lr": 1e-5,
        "train.num_epochs": 3,
        "train.num_gpus": 2,
        "train.gpu_ids": [0, 1],  # one id per GPU, else the spec is invalid
        "gen_trt_engine.tensorrt.data_type": "FP16",
        "dataset.train_dataset.batch_size": 2,
    }
    assert call.inputs == {
        "results_dir": "/runs/x",
        "eval_dataset": "/data/kitti_val",
        "train_datasets": ["/data/kitti"],
        "dataset_name": "Kitti",
    }


@pytest.mark.parametrize(
    ("text", "skill", "action"),
    [
        ("fine-tune FFS", FFS, "train"),
        ("train the bp2 model", FFS, "train"),
        ("score FoundationStereo on middlebury", "depth-net-stereo", "evaluate"),
        ("evaluate stereo checkpoint", "depth-net-stereo", "evaluate"),
        ("run depth anything inference on my photos", "depth-net-mono", "inference"),
        ("export the monocular model to onnx", "depth-net-mono", "export"),
        ("build an fp16 engine for fast stereo from /r/export/FastFoundationStereo.onnx", FFS, "gen_trt_engine"),
        ("evaluate the fast stereo TensorRT engine /r/model_fp16.engine on /data/k", FFS, "evaluate"),
        ("convert my stereo folders at /data/raw into annotation files", "depth-net-stereo", "convert"),
    ],
)
def test_words_pick_skill_and_action(text: str, skill: str, action: str) -> None:
    call = parse_text(text)
    assert (call.skill, call.action) == (skill, action)


def test_relative_mono_sets_the_model_type(registry: Registry) -> None:
    p = plan("train relative mono depth on /data/own, plain training, results in /r", registry)
    assert p.spec["model"]["model_type"] == "RelativeDepthAnything"
    assert p.spec["dataset"]["dataset_name"] == "MonoDataset"
    assert p.spec["dataset"]["train_dataset"]["data_sources"][0]["dataset_name"] == "GenericMonoDataset"
    assert p.spec["train"]["optim"]["lr"] == 5e-6


def test_engine_evaluate_sets_trt_engine_not_checkpoint(registry: Registry) -> None:
    p = plan("evaluate the fast stereo engine /r/gen_trt_engine/model_fp16.engine on /data/k, results in /o", registry)
    assert p.spec["evaluate"]["trt_engine"] == "/r/gen_trt_engine/model_fp16.engine"
    assert p.spec["evaluate"]["checkpoint"] is None
    assert p.spec["dataset"]["test_dataset"]["data_sources"][0]["data_file"] == "/data/k/test.txt"
    assert p.ready


def test_parent_job_folder_gives_the_newest_exact_checkpoint(registry: Registry, tmp_path: Path) -> None:
    train = tmp_path / "run" / "train"
    train.mkdir(parents=True)
    for name in (
        "model_epoch_002_step_00200.pth",
        "model_epoch_010_step_01000.pth",
        "model_epoch_009_step_00999.pth",
        "dn_model_latest.pth",
        "notes.txt",
    ):
        (train / name).write_bytes(b"x")
    call = {"skill": FFS, "action": "export", "inputs": {"parent_job_dir": str(tmp_path / "run"), "results_dir": "/o"}}
    p = plan(call, registry)
    assert p.spec["export"]["checkpoint"] == str(train / "model_epoch_010_step_01000.pth")
    assert p.spec["export"]["onnx_file"] == "/o/export/FastFoundationStereo.onnx"
    call["inputs"]["latest"] = True
    assert plan(call, registry).spec["export"]["checkpoint"] == str(train / "dn_model_latest.pth")
    for f in train.glob("model_epoch_*"):
        f.unlink()
    call["inputs"]["latest"] = False
    p = plan(call, registry)
    assert not p.ready and any("only dn_model_latest.pth is there" in n for n in p.notes)
    assert p.missing == ["export.checkpoint: fill in (template placeholder ???)"]


def test_gen_trt_engine_engine_name_follows_the_precision(registry: Registry) -> None:
    p = plan("build an fp32 engine for fast stereo from /r/export/FastFoundationStereo.onnx, results in /r", registry)
    assert p.spec["gen_trt_engine"]["tensorrt"]["data_type"] == "FP32"
    assert p.spec["gen_trt_engine"]["onnx_file"] == "/r/export/FastFoundationStereo.onnx"
    assert p.spec["gen_trt_engine"]["trt_engine"] == "/r/gen_trt_engine/model_fp32.engine"


def test_missing_results_folder_and_data_are_reported_not_guessed(registry: Registry) -> None:
    p = plan({"skill": "depth-net-stereo", "action": "train"}, registry)
    assert not p.ready
    assert any(m.startswith("results_dir: no results folder given") for m in p.missing)
    assert "dataset.train_dataset.data_sources[0].data_file: fill in (template placeholder ???)" in p.missing


def test_paths_are_not_read_as_verbs_and_relative_inputs_become_absolute(registry: Registry, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    call = parse_text("evaluate the fast stereo checkpoint /runs/train/model_epoch_001_step_00010.pth on ./data/k")
    assert (call.action, call.next_actions) == ("evaluate", [])
    assert call.inputs["eval_dataset"] == "./data/k"
    p = plan("fine-tune ffs on ./data/k w/o HPO, results in out", registry)
    assert p.automl_policy == "off"
    assert p.spec["dataset"]["train_dataset"]["data_sources"][0]["data_file"] == str(tmp_path / "data/k/train.txt")
    kept = plan({"skill": FFS, "action": "train", "spec_overrides": {"results_dir": "rel/out"}}, registry)
    assert kept.spec["results_dir"] == "rel/out"  # spec_overrides are never rewritten


def test_train_checkpoint_input_is_the_pretrained_model_unless_resuming(registry: Registry) -> None:
    call = {"skill": FFS, "action": "train", "inputs": {"checkpoint": "/ckpt/bp2.pth", "results_dir": "/r"}}
    assert plan(call, registry).spec["train"]["pretrained_model_path"] == "/ckpt/bp2.pth"
    call["inputs"]["resume_model"] = "/r/train/model_epoch_003_step_00300.pth"
    p = plan(call, registry)
    assert p.spec["train"]["pretrained_model_path"] is None
    assert p.spec["train"]["resume_training_checkpoint_path"] == "/r/train/model_epoch_003_step_00300.pth"
