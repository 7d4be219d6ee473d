"""What a user sees for a spec that cannot be read as meant: one line, the file (and line), what to do;
and the status rule: STARTED before FAILURE where a results folder is known, else nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from skillbank.runtime.runner import NOTHING_WRITTEN, run_action
from skillbank.runtime.status import read_status
from skillbank.specs import SpecError, load_spec
from skillbank.specs.dotted import key_parts, set_dotted


def _spec(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _message(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(path, overrides or [])
    return str(info.value)


# ---------------------------------------------------------------------------------------- spec files
@pytest.mark.parametrize("text", ["", "\n\n", "# every key commented out\n# train: {num_epochs: 3}\n"])
def test_an_empty_spec_file_says_it_is_empty(tmp_path, text):
    assert _message(_spec(tmp_path, text)) == (
        "Configuration error: spec.yaml: the spec file is empty; expected spec sections such as results_dir, "
        "model and dataset"
    )


def test_a_dotted_key_at_the_top_shows_the_nested_form(tmp_path):
    path = _spec(tmp_path, "results_dir: r\ntrain.optim.lr: 1e-3\n")
    assert _message(path) == (
        "Configuration error: spec.yaml:2: 'train.optim.lr' is a dotted key; in a spec file write it nested: "
        "train: {optim: {lr: ...}}, or pass train.optim.lr=... on the command line"
    )


def test_a_dotted_key_inside_a_section_shows_the_nested_form(tmp_path):
    path = _spec(tmp_path, "results_dir: r\ntrain:\n  num_epochs: 3\n  optim.lr: 1e-3\n")
    assert _message(path) == (
        "Configuration error: spec.yaml:4: 'train.optim.lr' is a dotted key; in a spec file write it nested: "
        "train: {optim: {lr: ...}}, or pass train.optim.lr=... on the command line"
    )


def test_a_dotted_key_inside_a_list_item_is_named_with_its_index(tmp_path):
    path = _spec(tmp_path, "dataset:\n  train_dataset:\n    data_sources:\n      - {a.b: 1}\n")
    assert _message(path) == (
        "Configuration error: spec.yaml:4: 'dataset.train_dataset.data_sources[0].a.b' is a dotted key; in a spec "
        "file write it nested: under dataset.train_dataset.data_sources[0]: a: {b: ...}, or pass "
        "dataset.train_dataset.data_sources[0].a.b=... on the command line"
    )


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    path = _spec(
        tmp_path, "results_dir: r\ntrain: {num_epochs: 3}\nmodel: {model_type: FoundationStereo}\ntrain: {seed: 1}\n"
    )
    assert _message(path) == (
        "Configuration error: spec.yaml:4: key 'train' is given twice (lines 2 and 4); YAML would keep only the "
        "last: merge them into one"
    )


def test_a_key_that_is_not_a_name_is_refused(tmp_path):
    path = _spec(tmp_path, "results_dir: r\ntrain:\n  1: 2\n")
    assert _message(path) == (
        "Configuration error: spec.yaml:3: key '1' under train is not a name; spec keys are words such as "
        "results_dir, model, train"
    )


def test_merge_keys_and_aliases_still_load(tmp_path):
    """A merged key given again beside ``<<`` overrides it (YAML's rule), which is not a repeated key."""
    path = _spec(
        tmp_path,
        "results_dir: r\nevaluate: &common {num_gpus: 0, batch_size: 2}\ninference:\n  <<: *common\n  batch_size: 3\n",
    )
    spec = load_spec(path)
    assert (spec.inference.num_gpus, spec.inference.batch_size, spec.evaluate.batch_size) == (0, 3, 2)


def test_a_yaml_syntax_error_names_file_and_line(tmp_path):
    path = _spec(tmp_path, "results_dir: r\ntrain:\n  num_epochs: 3\n   seed: 1\n")
    assert _message(path) == "Configuration error: spec.yaml:4: invalid YAML: mapping values are not allowed here"


def test_a_list_where_a_section_belongs_names_the_key(tmp_path):
    assert _message(_spec(tmp_path, "results_dir: r\ntrain: [1, 2]\n")) == (
        "Configuration error: train: expected a mapping of keys, got [1, 2]"
    )


def test_a_section_left_empty_says_so(tmp_path):
    path = _spec(tmp_path, "results_dir: r\ntrain:\n#  num_epochs: 3\n")
    assert _message(path) == "Configuration error: train: expected a mapping of keys, got an empty value"
    assert _message(_spec(tmp_path, "results_dir: r\n", "s2.yaml"), ["train.num_epochs="]) == (
        "Configuration error: train.num_epochs: expected an integer, got an empty value"
    )


def test_a_binary_file_is_not_a_spec(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"\xff\xfe\x00binary")
    assert _message(path) == (
        "Configuration error: spec.yaml: not a UTF-8 text file (byte 0xff at offset 0); expected a YAML spec"
    )


def test_a_folder_is_not_a_spec_file(tmp_path):
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert str(info.value) == f"File system error: {tmp_path}: is a folder; expected a spec YAML file"
    assert info.value.kind == "File system error"


# ------------------------------------------------------------------------------ overrides into lists
def test_an_override_sets_a_list_item_in_either_spelling(tmp_path, monkeypatch):
    path = _spec(
        tmp_path,
        "dataset:\n  train_dataset:\n    data_sources:\n      - {dataset_name: GenericDataset, data_file: a.txt}\n",
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for key in ("dataset.train_dataset.data_sources[0].data_file", "dataset.train_dataset.data_sources.0.data_file"):
        spec = load_spec(path, [f"{key}=b.txt"])
        # a relative path typed on the command line resolves against the current folder
        assert spec.dataset.train_dataset.data_sources[0].data_file == str(elsewhere / "b.txt")
    assert load_spec(path).dataset.train_dataset.data_sources[0].data_file == str(tmp_path / "a.txt")


def test_overrides_into_lists_say_what_is_wrong():
    data = {"dataset": {"train_dataset": {"data_sources": [{"data_file": "a"}]}}}
    messages = []
    for key in (
        "dataset.train_dataset.data_sources[3].data_file",
        "dataset.train_dataset.data_sources.data_file",
        "train.optim[0]",
    ):
        with pytest.raises(SpecError) as info:
            set_dotted(data, key, 1)
        messages.append(str(info.value))
    assert messages == [
        "Configuration error: dataset.train_dataset.data_sources: has 1 item(s), cannot set "
        "dataset.train_dataset.data_sources[3]",
        "Configuration error: dataset.train_dataset.data_sources: is a list, cannot set "
        "dataset.train_dataset.data_sources.data_file inside it; name an item, e.g. "
        "dataset.train_dataset.data_sources[0].data_file",
        "Configuration error: train.optim: is not a list in the spec, cannot set train.optim[0]",
    ]
    assert key_parts("a.b[2][1].c") == ["a", "b", 2, 1, "c"]


# ------------------------------------------------------------------------------- through the runner
def test_no_spec_given_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "skillbank.runtime.cli", "train"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "depth_net: FAILURE: Configuration error: no spec given: name the experiment spec with -e, e.g. "
        f"depth_net train -e spec.yaml [dotted.key=value ...] ({NOTHING_WRITTEN})"
    ]
    assert list(tmp_path.iterdir()) == []


def test_an_empty_spec_file_through_the_runner_writes_nothing(tmp_path, capsys):
    path = _spec(tmp_path, "")
    assert run_action("train", str(path), []) == 2
    assert capsys.readouterr().err.splitlines() == [
        "depth_net: FAILURE: Configuration error: spec.yaml: the spec file is empty; expected spec sections such "
        f"as results_dir, model and dataset ({NOTHING_WRITTEN})"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_an_empty_spec_file_with_results_dir_on_the_command_line_writes_there(tmp_path, capsys):
    path = _spec(tmp_path, "")
    assert run_action("train", str(path), [f"results_dir={tmp_path / 'out'}"]) == 2
    status = read_status(tmp_path / "out" / "train" / "status.json")
    assert [e["status"] for e in status] == ["STARTED", "FAILURE"]
    assert status[0]["message"] == "Starting depth_net train."
    assert status[1]["message"] == (
        "Configuration error: spec.yaml: the spec file is empty; expected spec sections such as results_dir, "
        "model and dataset"
    )
    assert NOTHING_WRITTEN not in capsys.readouterr().err


def test_a_rejected_spec_writes_started_before_failure(tmp_path, capsys):
    path = _spec(tmp_path, f"results_dir: {tmp_path / 'out'}\ntrain.optim.lr: 1e-3\n")
    assert run_action("train", str(path), []) == 2
    status = read_status(tmp_path / "out" / "train" / "status.json")
    assert [e["status"] for e in status] == ["STARTED", "FAILURE"]
    expected = (
        "Configuration error: spec.yaml:2: 'train.optim.lr' is a dotted key; in a spec file write it nested: "
        "train: {optim: {lr: ...}}, or pass train.optim.lr=... on the command line"
    )
    assert status[1]["message"] == expected
    assert capsys.readouterr().err.splitlines() == [f"depth_net: FAILURE: {expected}"]


def test_a_spec_without_results_dir_says_nothing_was_written(tmp_path, capsys):
    path = _spec(tmp_path, "model: {model_type: FastFoundationStereo}\n")
    assert run_action("export", str(path), []) == 2
    assert capsys.readouterr().err.splitlines() == [
        "depth_net: FAILURE: Configuration error: results_dir: set results_dir (or export.results_dir) to say "
        f"where results go ({NOTHING_WRITTEN})"
    ]


def test_custom_param_ranges_take_dotted_keys_as_tao_writes_them(tmp_path: Path) -> None:
    """AutoML's custom_param_ranges is keyed by dotted spec keys by design: not a dotted-key mistake."""
    from skillbank.specs.loading import read_yaml_mapping

    spec = tmp_path / "spec.yaml"
    spec.write_text("automl:\n  custom_param_ranges:\n    train.optim.lr: {valid_min: 1.0e-5, valid_max: 1.0e-3}\n")
    assert read_yaml_mapping(spec)["automl"]["custom_param_ranges"] == {
        "train.optim.lr": {"valid_min": 1.0e-5, "valid_max": 1.0e-3}
    }
    spec.write_text("automl:\n  train.optim.lr: 1\n")  # anywhere else a dotted key is still refused
    with pytest.raises(SpecError, match="is a dotted key"):
        read_yaml_mapping(spec)
