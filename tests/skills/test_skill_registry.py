"""The registry finds our skills (and users' folders), parses them and answers questions about them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from skilltest_helpers import FFS, edit

from skillbank.registry import ENV_VAR, Registry

MODEL_SKILLS = {"depth-net-fast-stereo", "depth-net-stereo", "depth-net-mono"}
WORKFLOW_SKILLS = {"run-automl", "depth-net-deploy"}


def test_our_skills_are_found_with_their_kinds_and_actions(registry: Registry) -> None:
    names = {s.name for s in registry.list()}
    assert names >= MODEL_SKILLS | WORKFLOW_SKILLS
    assert not registry.problems
    assert {s.name for s in registry.list() if s.kind == "model"} >= MODEL_SKILLS
    assert registry.actions(FFS) == ["train", "evaluate", "inference", "export", "gen_trt_engine", "convert"]
    assert "convert" not in registry.actions("depth-net-mono")
    assert registry.get(FFS).network_arch == "FastFoundationStereo"
    assert registry.get("depth-net-mono").network_arch == "MetricDepthAnything"
    assert registry.get("depth-net-mono").info["other_network_archs"] == ["RelativeDepthAnything"]


def test_ffs_key_defaults_carry_the_whole_bp2_block(registry: Registry) -> None:
    from skillbank.specs import FFS_BP2_MODEL, FFS_BP2_WIDTHS

    defaults = registry.get(FFS).info["key_defaults"]
    for key, value in {**FFS_BP2_WIDTHS, **FFS_BP2_MODEL}.items():
        if key == "train_iters":  # a training choice, not part of the checkpoint's shape
            continue
        assert defaults[f"model.{key}"] == value, key
    assert len([k for k in defaults if k.removeprefix("model.") in FFS_BP2_WIDTHS]) == 15
    assert defaults["dataset.max_disparity"] == 192
    assert defaults["dataset.train_dataset.augmentation.crop_size"] == [320, 736]


def test_automl_settings_follow_the_allow_lists(registry: Registry) -> None:
    ffs, fs, mono = (registry.get(n).info["automl"] for n in (FFS, "depth-net-stereo", "depth-net-mono"))
    assert set(ffs["hyperparameters"]) == {"train.optim.lr", "train.optim.lr_decay"}
    assert set(fs["hyperparameters"]) == {"train.optim.lr", "train.optim.weight_decay"}
    assert set(mono["hyperparameters"]) == {"train.optim.lr", "train.optim.weight_decay"}
    assert (ffs["metric"], ffs["direction"]) == ("val/epe", "minimize")
    assert (fs["metric"], fs["direction"]) == ("val/epe", "minimize")
    assert (mono["metric"], mono["direction"]) == ("val/d1", "maximize")
    for block in (ffs, fs, mono):
        assert (block["max_recommendations"], block["max_concurrent"], block["algorithm"]) == (20, 4, "bayesian")


def test_automl_runnable_for_our_model_skills_and_reason_when_not(registry: Registry, skill_copy) -> None:
    for name in MODEL_SKILLS:
        status = registry.automl_status(name)
        assert status.enabled and status.runnable, status.reason
    assert not registry.automl_status("run-automl").runnable
    copy = skill_copy()
    (copy / "schemas" / "train.schema.json").unlink()
    status = Registry.load([copy], builtin=False).automl_status(FFS)
    assert status.enabled and not status.runnable
    assert "not runnable until schemas are generated" in status.reason
    assert "schemas/train.schema.json" in status.reason


def test_extra_folders_from_argument_and_env_override_ours(skill_copy, monkeypatch, tmp_path: Path) -> None:
    copy = skill_copy(FFS)
    edit(copy / "references" / "skill_info.yaml", "automl_enabled: true", "automl_enabled: false")
    reg = Registry.load([copy.parent])
    assert reg.get(FFS).origin == "argument" and reg.get(FFS).path == copy
    assert reg.automl_status(FFS).enabled is False
    monkeypatch.setenv(ENV_VAR, str(copy))
    reg = Registry.load()
    assert reg.get(FFS).origin == ENV_VAR
    missing = tmp_path / "nope"
    assert "skill folder not found" in str(Registry.load([missing]).problems[0])


def test_a_folder_that_does_not_parse_is_left_out_with_its_problem(skill_copy) -> None:
    copy = skill_copy(FFS, "broken-skill")
    (copy / "SKILL.md").write_text("no front matter here\n", encoding="utf-8")
    reg = Registry.load([copy.parent], builtin=False)
    assert "broken-skill" not in reg.skills
    assert reg.problems and "broken-skill/SKILL.md" in str(reg.problems[0])


def test_loading_all_skills_is_fast_and_imports_no_torch() -> None:
    """Registry.load() of every skill in a fresh process: < 100 ms, and torch never imported.

    The import of skillbank.registry itself (yaml, pathlib, dataclasses) is timed too and reported; on a
    loaded 2-core machine it varies with the interpreter's startup, so it only gets a loose bound.
    """
    code = (
        "import json, sys, time\n"
        "t0 = time.perf_counter()\n"
        "from skillbank.registry import Registry\n"
        "t1 = time.perf_counter()\n"
        "reg = Registry.load()\n"
        "names = [s.name for s in reg.list()]\n"
        "t2 = time.perf_counter()\n"
        "print(json.dumps({'import_ms': (t1 - t0) * 1000, 'load_ms': (t2 - t1) * 1000, 'n': len(names),\n"
        "                  'torch': 'torch' in sys.modules}))\n"
    )
    runs = [json.loads(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(3)]
    assert all(r["n"] >= 5 and not r["torch"] for r in runs)
    load = min(r["load_ms"] for r in runs)
    total = min(r["import_ms"] + r["load_ms"] for r in runs)
    assert load < 100, f"loading every skill took {load:.1f} ms"
    assert total < 250, f"import + load took {total:.1f} ms"
