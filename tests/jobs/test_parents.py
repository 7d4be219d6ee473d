"""Parent artefacts and the one checkpoint-name rule shared by the skill bank and the runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from skillbank.checkpoint_names import EPOCH_STEP_RE, checkpoint_name, newest_checkpoint, parse_checkpoint_name
from skillbank.jobs.parents import ParentError, fill_from_parent, resolve_parent_artefact
from skillbank.jobs.store import Job
from skillbank.resolvers import pick_checkpoint


def _parent(folder: Path, action: str = "train", status: str = "COMPLETE", message: str = "") -> Job:
    return Job(
        id="abc234",
        skill="s",
        action=action,
        route="runtime",
        automl_policy="off",
        spec="{}",
        results_dir=str(folder),
        status=status,
        message=message,
    )


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")


def test_names_follow_the_trainer_and_order_as_numbers(tmp_path: Path) -> None:
    assert checkpoint_name(3, 42) == "model_epoch_003_step_00042.pth"
    assert parse_checkpoint_name("model_epoch_1000_step_123456.pth") == (1000, 123456)
    assert parse_checkpoint_name("model_epoch_1_step_2.pth") is None  # not a name the trainer writes
    assert parse_checkpoint_name("model_epoch_001_step_00002.pth.tmp") is None
    _touch(tmp_path, "model_epoch_999_step_99999.pth", "model_epoch_1000_step_100000.pth", "dn_model_latest.pth")
    assert newest_checkpoint(tmp_path)[2].name == "model_epoch_1000_step_100000.pth"


def test_skill_bank_and_runtime_share_the_rule(tmp_path: Path) -> None:
    resolve = pytest.importorskip("skillbank.runtime.checkpoints.resolve")
    assert resolve.EPOCH_STEP_RE is EPOCH_STEP_RE
    _touch(
        tmp_path / "train",
        "model_epoch_009_step_00090.pth",
        "model_epoch_010_step_00100.pth",
        "model_epoch_1_step_999.pth",
    )
    picked = pick_checkpoint(tmp_path).value
    assert Path(picked).name == "model_epoch_010_step_00100.pth"
    assert resolve.resolve_checkpoint(tmp_path) == Path(picked)


def test_train_parent_gives_the_exact_newest_checkpoint(tmp_path: Path) -> None:
    _touch(tmp_path, "model_epoch_000_step_00006.pth", "model_epoch_001_step_00012.pth", "dn_model_latest.pth")
    key, path = resolve_parent_artefact(_parent(tmp_path), "evaluate")
    assert key == "evaluate.checkpoint" and path.name == "model_epoch_001_step_00012.pth"
    assert resolve_parent_artefact(_parent(tmp_path), "export", latest=True)[1].name == "dn_model_latest.pth"
    spec: dict = {"inference": {"checkpoint": None}}
    fill_from_parent(spec, _parent(tmp_path), "inference")
    assert spec["inference"]["checkpoint"].endswith("model_epoch_001_step_00012.pth")


def test_export_and_engine_parents(tmp_path: Path) -> None:
    _touch(tmp_path / "e", "FastFoundationStereo.onnx")
    assert resolve_parent_artefact(_parent(tmp_path / "e", "export"), "gen_trt_engine")[0] == "gen_trt_engine.onnx_file"
    _touch(tmp_path / "g", "model_fp16.engine")
    spec: dict = {"evaluate": {"checkpoint": "x.pth"}}
    fill_from_parent(spec, _parent(tmp_path / "g", "gen_trt_engine"), "evaluate")
    assert spec["evaluate"] == {"trt_engine": str(tmp_path / "g" / "model_fp16.engine")}


@pytest.mark.parametrize(
    ("status", "files", "child", "match"),
    [
        ("FAILED", [], "evaluate", "abc234 .train. FAILED: exit 4"),
        ("RUNNING", [], "evaluate", "still RUNNING"),
        ("COMPLETE", ["dn_model_latest.pth"], "evaluate", "no model_epoch_EEE_step_SSSSS.pth .* ask for 'latest'"),
        ("COMPLETE", [], "gen_trt_engine", "cannot take its input from a train job"),
    ],
)
def test_parent_errors_are_clear(tmp_path: Path, status: str, files: list[str], child: str, match: str) -> None:
    _touch(tmp_path, *files)
    with pytest.raises(ParentError, match=match):
        resolve_parent_artefact(_parent(tmp_path, status=status, message="exit 4 (training diverged)"), child)
