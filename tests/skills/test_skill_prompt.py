"""``skillbank prompt``: the <available_skills> block for an agent's system prompt, in the format of the
Agent Skills reference library's ``to-prompt``."""

from __future__ import annotations

from pathlib import Path

import pytest
from skilltest_helpers import FFS, edit
from typer.testing import CliRunner

from skillbank.cli import app
from skillbank.registry import Registry

runner = CliRunner()


def blocks(text: str) -> list[list[str]]:
    """The <skill> entries of a prompt block, each as its lines between <skill> and </skill>."""
    lines = text.strip().splitlines()
    assert lines[0] == "<available_skills>" and lines[-1] == "</available_skills>"
    out, current = [], None
    for line in lines[1:-1]:
        if line == "<skill>":
            current = []
        elif line == "</skill>":
            out.append(current)
            current = None
        else:
            current.append(line)
    return out


def test_prompt_lists_every_skill_with_name_description_and_location(registry: Registry) -> None:
    result = runner.invoke(app, ["prompt"])
    assert result.exit_code == 0, result.output
    entries = blocks(result.stdout)
    assert [e[1] for e in entries] == [s.name for s in registry.list()]
    for entry, skill in zip(entries, registry.list(), strict=True):
        assert entry[0::3] == ["<name>", "<description>", "<location>"]
        assert entry[2::3] == ["</name>", "</description>", "</location>"]
        location = Path(entry[7])
        assert location.is_absolute() and location == (skill.path / "SKILL.md").resolve() and location.is_file()
        assert entry[4].startswith(skill.description.strip()[:40].replace('"', "&quot;"))
    ffs = entries[0]
    assert ffs[1] == FFS and "&quot;fine-tune fast stereo&quot;" in ffs[4] and '"' not in ffs[4]


def test_prompt_is_what_the_reference_to_prompt_writes(registry: Registry) -> None:
    skills_ref = pytest.importorskip("skills_ref")
    ours = runner.invoke(app, ["prompt"]).stdout
    assert ours == skills_ref.to_prompt([s.path for s in registry.list()]) + "\n"


def test_prompt_names_and_escaping(skill_copy, tmp_path: Path) -> None:
    copy = skill_copy()
    edit(copy / "SKILL.md", '  an fp16 engine for fast stereo".', '  an fp16 engine for <fast> stereo & more".')
    result = runner.invoke(app, ["prompt", FFS, "depth-net-mono", "--skills-path", str(copy.parent)])
    assert result.exit_code == 0, result.output
    entries = blocks(result.stdout)
    assert [e[1] for e in entries] == [FFS, "depth-net-mono"]
    assert "&lt;fast&gt; stereo &amp; more&quot;." in entries[0][4]
    assert Path(entries[0][7]) == (copy / "SKILL.md").resolve()  # the user's copy overrides ours
    missing = runner.invoke(app, ["prompt", "nope"])
    assert missing.exit_code == 1 and "skill 'nope' not found" in missing.output


def test_prompt_of_no_skills_is_an_empty_block(tmp_path: Path) -> None:
    from skillbank.skill_listing import available_skills_prompt

    assert available_skills_prompt([]) == "<available_skills>\n</available_skills>"
