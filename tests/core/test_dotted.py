"""skillbank.specs.dotted: one set_dotted for the command line, the planner, the skill checks and AutoML."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from skillbank.registry import Registry, builtin_root
from skillbank.router import PlanQuestion, plan
from skillbank.skill_checks import check_skill_dir
from skillbank.specs import SpecError
from skillbank.specs.dotted import flatten, get_dotted, key_parts, set_dotted

MONO = "depth-net-mono"


def test_set_dotted_creates_sections_and_replaces_the_value_at_the_end() -> None:
    data: dict = {"train": {"optim": {"lr": 1.0, "momentum": 0.9}, "num_epochs": None}}
    set_dotted(data, "train.optim.lr", 2e-5)
    set_dotted(data, "model.hidden_dims", [128])  # missing section created
    set_dotted(data, "train.num_epochs.inner", 3)  # a null on the way is an unset section
    set_dotted(data, "train.optim", {"lr": 3.0})  # the end of the key is replaced whatever it held
    assert data == {"train": {"optim": {"lr": 3.0}, "num_epochs": {"inner": 3}}, "model": {"hidden_dims": [128]}}


def test_set_dotted_refuses_to_replace_a_value_on_the_way_and_changes_nothing() -> None:
    data = {"train": {"optim": 5, "num_epochs": 2}}
    before = copy.deepcopy(data)
    with pytest.raises(SpecError) as info:
        set_dotted(data, "train.optim.lr", 1e-5)
    assert str(info.value) == "Configuration error: train.optim: is a value, cannot set train.optim.lr inside it"
    with pytest.raises(SpecError, match=r"^Configuration error: train.num_epochs: is a value"):
        set_dotted(data, "train.num_epochs.x.y", 1)
    assert data == before


def test_set_dotted_sets_list_items_by_index_in_both_spellings() -> None:
    data = {"dataset": {"train_dataset": {"data_sources": [{"data_file": "a"}, {"data_file": "b"}]}}}
    set_dotted(data, "dataset.train_dataset.data_sources[1].data_file", "c")
    set_dotted(data, "dataset.train_dataset.data_sources.0.data_file", "d")
    assert [s["data_file"] for s in data["dataset"]["train_dataset"]["data_sources"]] == ["d", "c"]
    with pytest.raises(SpecError, match="override must look like dotted.key=value"):
        set_dotted(data, "train..lr", 1)
    assert key_parts("a.b[2][1].c") == ["a", "b", 2, 1, "c"]


def test_get_dotted_and_flatten_read_the_same_keys() -> None:
    data = {"train": {"optim": {"lr": 0.5}, "empty": {}}, "sources": [{"data_file": "x"}]}
    assert get_dotted(data, "train.optim.lr") == 0.5
    assert get_dotted(data, "sources[0].data_file") == "x"
    assert get_dotted(data, "sources[3].data_file") is None
    assert get_dotted(data, "train.missing.deeper") is None
    assert flatten(data) == {"train.optim.lr": 0.5, "train.empty": {}, "sources": [{"data_file": "x"}]}


def test_planner_asks_instead_of_dropping_a_section_under_a_conflicting_override() -> None:
    request = {"skill": MONO, "action": "train", "spec_overrides": {"train.optim": 5, "train.optim.lr": 1e-5}}
    with pytest.raises(PlanQuestion, match=r"train\.optim: is a value, cannot set train\.optim\.lr inside it"):
        plan(request, Registry.load())


def test_skill_checks_report_conflicting_key_defaults(tmp_path: Path) -> None:
    skill = tmp_path / MONO
    shutil.copytree(builtin_root() / MONO, skill)
    info = skill / "references" / "skill_info.yaml"
    text = info.read_text(encoding="utf-8")
    assert text.count("  train.optim.lr: 5.0e-6\n") == 1
    info.write_text(text.replace("  train.optim.lr: 5.0e-6\n", "  train.optim: 5\n  train.optim.lr: 5.0e-6\n"))
    problems = [str(p) for p in check_skill_dir(skill)]
    assert any(
        "key_defaults.train.optim.lr" in p and "train.optim: is a value, cannot set train.optim.lr inside it" in p
        for p in problems
    ), problems
