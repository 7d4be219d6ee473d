"""Bad specs fail with exit != 0, one line naming the dotted key, and a FAILURE line in status.json."""

from __future__ import annotations

import re

import pytest

from skillbank.specs import FFS_BP2_WIDTHS, SpecError, load_spec


def _train_spec(annotation, **model):
    return {
        "results_dir": "results",
        "model": {"model_type": "FastFoundationStereo", **model},
        "dataset": {
            "train_dataset": {"data_sources": [{"dataset_name": "GenericDataset", "data_file": str(annotation)}]}
        },
    }


CASES = [
    # (mutation, expected dotted key, expected words)
    (
        lambda s: (
            s["train"].__setitem__("optim", {"lrr": 1e-4})
            if "train" in s
            else s.__setitem__("train", {"optim": {"lrr": 1e-4}})
        ),
        "train.optim.lrr",
        "unknown key (did you mean 'lr'?)",
    ),
    (lambda s: s.__setitem__("train", {"num_epochs": "ten"}), "train.num_epochs", "expected an integer, got 'ten'"),
    (lambda s: s.__setitem__("train", {"optim": {"lr": 5.0}}), "train.optim.lr", "5.0 is out of range; expected <= 1"),
    (
        lambda s: s["dataset"]["train_dataset"]["data_sources"][0].pop("data_file"),
        "dataset.train_dataset.data_sources[0].data_file",
        "required key is missing",
    ),
    (
        lambda s: s["model"].update({k: v for k, v in FFS_BP2_WIDTHS.items() if k != "mask_widths"}),
        "model.mask_widths",
        "missing from a custom FastFoundationStereo width block",
    ),
    (lambda s: s.__setitem__("trian", {}), "trian", "unknown key (did you mean 'train'?)"),
    (lambda s: s["model"].__setitem__("model_type", "FastFoundation"), "model.model_type", "is not an option"),
    (lambda s: s["model"].__setitem__("max_disparity", 200), "model.max_disparity", "must be a multiple of 32"),
]


@pytest.mark.parametrize(("mutate", "key", "words"), CASES, ids=[c[1] for c in CASES])
def test_bad_spec_fails_with_one_line_naming_the_key(spec_runner, annotation, capsys, mutate, key, words):
    spec = _train_spec(annotation)
    mutate(spec)
    code, status = spec_runner.run("train", spec)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith(f"depth_net: FAILURE: Configuration error: {key}: ")
    assert words in err[0]
    assert [e["status"] for e in status] == ["STARTED", "FAILURE"]
    assert status[1]["message"].startswith(f"Configuration error: {key}: ")


def test_missing_data_file_on_disk_is_a_file_system_error(spec_runner, tmp_path, capsys):
    spec = _train_spec(tmp_path / "nope.txt")
    code, status = spec_runner.run("train", spec)
    assert code == 3
    assert status[-1]["status"] == "FAILURE"
    assert status[-1]["message"] == (
        f"File system error: dataset.train_dataset.data_sources[0].data_file: file not found: {tmp_path / 'nope.txt'}"
    )


def test_missing_results_dir_is_named(tmp_path, capsys):
    from skillbank.runtime.runner import run_action

    spec = tmp_path / "s.yaml"
    spec.write_text("model: {model_type: FastFoundationStereo}\n")
    assert run_action("export", str(spec), []) == 2
    assert "results_dir: set results_dir (or export.results_dir)" in capsys.readouterr().err


def test_invalid_yaml_names_file_and_line(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("model:\n  model_type: [unclosed\n")
    with pytest.raises(SpecError, match=r"^Configuration error: s\.yaml:\d+: invalid YAML"):
        load_spec(spec)


def test_action_requirements_are_named(spec_runner, capsys):
    code, status = spec_runner.run("evaluate", {"results_dir": "results"})
    assert code == 2
    assert [e["status"] for e in status] == ["STARTED", "FAILURE"]
    assert re.match(r"Configuration error: evaluate\.checkpoint: required for evaluate", status[1]["message"])


def test_not_implemented_action_fails_cleanly(spec_runner, tmp_path, capsys):
    ckpt = tmp_path / "m.pth"
    ckpt.write_bytes(b"x")
    code, status = spec_runner.run(
        "gen_trt_engine", {"results_dir": "results", "gen_trt_engine": {"onnx_file": str(ckpt)}}
    )
    assert code != 0
    assert [e["status"] for e in status][-1] == "FAILURE"


def test_convert_with_a_pattern_that_matches_nothing_is_a_configuration_error(spec_runner, tmp_path):
    (tmp_path / "data").mkdir()
    code, status = spec_runner.run(
        "convert", {"results_dir": "results", "convert": {"data_root": str(tmp_path / "data")}}
    )
    assert code == 2
    assert status[-1]["status"] == "FAILURE"
    assert status[-1]["message"].startswith("Configuration error: convert: left_dir 'left' matched no folder")


def test_bad_annotation_found_mid_run_is_a_file_system_error(spec_runner, tmp_path):
    ann = tmp_path / "test.txt"
    ann.write_text("a.png b.png c.pfm d.png extra\n")
    ckpt = tmp_path / "m.pth"
    ckpt.write_bytes(b"")
    spec = {
        "results_dir": "results",
        "model": {"model_type": "FastFoundationStereo"},
        "evaluate": {"checkpoint": str(ckpt), "num_gpus": 0},
        "dataset": {"test_dataset": {"data_sources": [{"dataset_name": "GenericDataset", "data_file": str(ann)}]}},
    }
    code, status = spec_runner.run("evaluate", spec)
    assert code == 3  # the data is checked before the (empty) checkpoint is read
    assert status[-1]["status"] == "FAILURE"
    assert status[-1]["message"] == f"File system error: dataset.test_dataset: {ann}:1: 5 columns, expected 2-4"


def test_missing_runtime_package_is_a_dependency_error(spec_runner, monkeypatch, capsys):
    """The core installs without torch; an action then names the package to install, exit 6."""
    from skillbank.runtime import actions

    def needs_torch(ctx):  # noqa: ARG001
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(actions, "load_action", lambda name: needs_torch)
    code, status = spec_runner.run("convert", {"results_dir": "results", "convert": {"mode": "synthetic"}})
    assert code == 6
    assert status[-1]["message"].startswith("Dependency error: depth_net convert needs the 'torch' package")
    assert capsys.readouterr().err.count("\n") == 1
