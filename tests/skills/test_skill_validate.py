"""``skillbank validate``: our skills pass; broken copies fail with the file and the key named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from skilltest_helpers import FFS, edit
from typer.testing import CliRunner

from skillbank.skill_checks import check_roots, check_skill_dir


def run_validate(*dirs: Path) -> Result:
    from skillbank.cli import app

    return CliRunner().invoke(app, ["validate", *map(str, dirs)])


def problems_of(path: Path) -> list[str]:
    return [str(p) for p in check_skill_dir(path)]


def test_our_skills_pass_validate() -> None:
    from skillbank.registry import builtin_root

    assert check_roots([builtin_root()]) == []
    result = run_validate()
    assert result.exit_code == 0, result.output
    assert "is valid" in result.stdout


def test_bad_name_is_reported_with_file_and_key(skill_copy) -> None:
    copy = skill_copy(FFS, "Bad_Name")
    problems = problems_of(copy)
    assert any(p.startswith("Bad_Name/SKILL.md:2: name:") and "must equal the folder name" in p for p in problems)
    edit(copy / "SKILL.md", "name: depth-net-fast-stereo", "name: Bad_Name")
    assert any("Bad_Name/SKILL.md:2: name:" in p and "lowercase" in p for p in problems_of(copy))
    result = run_validate(copy)
    assert result.exit_code == 1
    assert "Bad_Name/SKILL.md:2: name:" in result.stdout


def test_missing_template_is_reported(skill_copy) -> None:
    copy = skill_copy()
    (copy / "references" / "spec_template_train.yaml").unlink()
    problems = problems_of(copy)
    assert any(
        p.startswith(f"{FFS}/references/spec_template_train.yaml: spec_templates.train: template missing")
        and "skillbank schemas generate" in p
        for p in problems
    ), problems
    result = run_validate(copy.parent)
    assert result.exit_code == 1 and "spec_template_train.yaml" in result.stdout


def test_schema_that_does_not_parse_is_reported(skill_copy) -> None:
    copy = skill_copy()
    (copy / "schemas" / "evaluate.schema.json").write_text('{"type": "object",', encoding="utf-8")
    problems = problems_of(copy)
    assert any(p.startswith(f"{FFS}/schemas/evaluate.schema.json:") and "invalid JSON" in p for p in problems)


def test_schema_that_is_not_a_json_schema_is_reported(skill_copy) -> None:
    copy = skill_copy()
    (copy / "schemas" / "export.schema.json").write_text(json.dumps({"type": 12}), encoding="utf-8")
    assert any("export.schema.json: type: not a JSON Schema" in p for p in problems_of(copy))


def test_unknown_key_default_is_reported_with_a_suggestion(skill_copy) -> None:
    copy = skill_copy()
    edit(copy / "references" / "skill_info.yaml", "  model.gru_hidden: 60", "  model.gru_hiden: 60")
    problems = problems_of(copy)
    assert any(
        p.startswith(f"{FFS}/references/skill_info.yaml: key_defaults.model.gru_hiden:")
        and "did you mean 'gru_hidden'" in p
        for p in problems
    ), problems
    result = run_validate(copy)
    assert result.exit_code == 1 and "key_defaults.model.gru_hiden" in result.stdout


def test_key_default_with_an_invalid_value_is_reported(skill_copy) -> None:
    copy = skill_copy()
    edit(copy / "references" / "skill_info.yaml", "  model.max_disparity: 192", "  model.max_disparity: 200")
    assert any(
        "key_defaults: template for train + key_defaults is invalid" in p and "model.max_disparity" in p
        for p in problems_of(copy)
    )


def test_unknown_shorthand_target_is_reported(skill_copy) -> None:
    copy = skill_copy()
    edit(copy / "references" / "skill_info.yaml", "learning_rate: train.optim.lr", "learning_rate: train.optim.rate")
    assert any(
        "spec_shorthand_keys.learning_rate: 'train.optim.rate' is not a spec key" in p for p in problems_of(copy)
    )


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        (
            "    train.optim.lr_decay: {valid_min: 0.05, valid_max: 0.9}",
            "    model.gru_hidden: {valid_min: 32, valid_max: 96}",
            "automl.hyperparameters.model.gru_hidden",
            "not AutoML-searchable",
        ),
        (
            "    train.optim.lr: {valid_min: 1.0e-6, valid_max: 1.0e-3, log_scale: true}",
            "    train.optim.lr: {valid_min: 1.0e-6, valid_max: 5.0, log_scale: true}",
            "automl.hyperparameters.train.optim.lr",
            "above the field's maximum",
        ),
        ("  max_concurrent: 4", "  max_concurrent: 0", "automl.max_concurrent", "less than the minimum"),
        ("automl_enabled: true", "automl_enabled: yes please", "automl_enabled", "is not of type 'boolean'"),
        ("  direction: minimize", "  direction: lower", "automl.direction", "is not one of"),
    ],
)
def test_skill_info_problems_name_the_key(skill_copy, old: str, new: str, key: str, words: str) -> None:
    copy = skill_copy()
    edit(copy / "references" / "skill_info.yaml", old, new)
    problems = problems_of(copy)
    assert any(f"{FFS}/references/skill_info.yaml: {key}:" in p and words in p for p in problems), problems


def test_front_matter_rules(skill_copy) -> None:
    copy = skill_copy()
    edit(copy / "SKILL.md", "license: Apache-2.0", "license:\n  - Apache-2.0")
    problems = problems_of(copy)
    assert f"{FFS}/SKILL.md:10: license: must be a string" in problems
    long = skill_copy(FFS, "long-skill")
    edit(long / "SKILL.md", "name: depth-net-fast-stereo", "name: long-skill")
    edit(long / "references" / "skill_info.yaml", "name: depth-net-fast-stereo", "name: long-skill")
    with (long / "SKILL.md").open("a", encoding="utf-8") as fh:
        fh.write("line\n" * 500)
    assert any("long-skill/SKILL.md: body:" in p and "under 500 lines" in p for p in problems_of(long))


def test_broken_link_and_missing_skill_info(skill_copy) -> None:
    copy = skill_copy()
    (copy / "references" / "parameters.md").unlink()
    assert f"{FFS}/SKILL.md: body: links to references/parameters.md, which does not exist" in problems_of(copy)
    (copy / "references" / "skill_info.yaml").unlink()
    assert any(p.startswith(f"{FFS}/references/skill_info.yaml: file not found") for p in problems_of(copy))


def test_template_that_breaks_its_schema_is_reported(skill_copy) -> None:
    copy = skill_copy()
    edit(copy / "references" / "spec_template_export.yaml", "opset_version: 17", "opset_version: 99")
    assert any(
        p.startswith(f"{FFS}/references/spec_template_export.yaml: export.opset_version: does not match")
        for p in problems_of(copy)
    )
