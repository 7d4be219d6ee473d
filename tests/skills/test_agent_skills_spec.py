"""Our skill folders against the Agent Skills specification: the reference validator (``skills-ref``, the
dev extra) accepts every folder we ship, and ``skillbank validate`` applies the same rules itself, one
line per problem naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from skilltest_helpers import FFS, edit
from typer.testing import CliRunner

from skillbank.cli import app
from skillbank.registry import Registry, builtin_root, skill_dirs
from skillbank.skill_checks import check_skill_dir
from skillbank.skill_spec import ALLOWED_FIELDS, check_skill_md

skills_ref = pytest.importorskip("skills_ref")

OURS = skill_dirs(builtin_root())
DESCRIPTION_LINE = '  an fp16 engine for fast stereo".\n'


def spec_problems(folder: Path) -> list[str]:
    """Our own specification problems of a folder's SKILL.md, as printed lines."""
    return [str(p) for p in check_skill_dir(folder) if p.file.split(":")[0].endswith("SKILL.md") and p.key != "body"]


def test_we_ship_five_skills() -> None:
    assert {p.name for p in OURS} == {
        "depth-net-fast-stereo",
        "depth-net-stereo",
        "depth-net-mono",
        "depth-net-deploy",
        "run-automl",
    }


@pytest.mark.parametrize("folder", OURS, ids=lambda p: p.name)
def test_reference_validator_accepts_every_skill_we_ship(folder: Path) -> None:
    assert skills_ref.validate(folder) == []
    props = skills_ref.read_properties(folder)
    assert props.name == folder.name
    assert set(props.metadata) >= {"version", "tool", "tags"}
    assert all(isinstance(v, str) for v in props.metadata.values())
    assert check_skill_md((folder / "SKILL.md").read_text(encoding="utf-8"), folder.name) == []


def test_reference_cli_accepts_every_skill_we_ship() -> None:
    from click.testing import CliRunner as ClickRunner
    from skills_ref.cli import main as agentskills

    for folder in OURS:
        result = ClickRunner().invoke(agentskills, ["validate", str(folder)])
        assert result.exit_code == 0, result.output
        assert f"Valid skill: {folder}" in result.output


def test_registry_reads_tao_facts_from_metadata(registry: Registry) -> None:
    ffs = registry.get(FFS)
    assert ffs.metadata["tool"] == "depth_net" and ffs.metadata["network_arch"] == "FastFoundationStereo"
    assert ffs.tags[:3] == ["stereo", "disparity", "depth"] and "bp2" in ffs.tags
    assert "tags" not in ffs.meta, "tags live in metadata, not at the top of the front matter"
    for skill in registry.list():
        assert set(skill.meta) <= set(ALLOWED_FIELDS), skill.name
        if skill.kind == "model":
            assert skill.metadata["network_arch"] == skill.info["network_arch"]


def test_top_level_tags_list_is_reported_by_skillbank_validate(skill_copy) -> None:
    copy = skill_copy()
    edit(copy / "SKILL.md", "license: Apache-2.0\n", "license: Apache-2.0\ntags: [stereo, disparity]\n")
    line = (copy / "SKILL.md").read_text(encoding="utf-8").splitlines().index("tags: [stereo, disparity]") + 1
    problems = spec_problems(copy)
    assert any(p.startswith(f"{FFS}/SKILL.md:{line}: tags: flow style") for p in problems), problems
    assert any(
        p.startswith(f"{FFS}/SKILL.md:{line}: tags: not a front matter field") and "metadata" in p for p in problems
    ), problems
    assert skills_ref.validate(copy)  # the reference validator refuses it too
    result = CliRunner().invoke(app, ["validate", str(copy)])
    assert result.exit_code == 1
    assert f"{FFS}/SKILL.md:{line}: tags:" in result.stdout
    assert all(": " in line for line in result.stdout.splitlines())  # one line per problem, file first


def test_block_style_tags_list_is_reported_as_a_field(skill_copy) -> None:
    copy = skill_copy()
    edit(copy / "SKILL.md", "license: Apache-2.0\n", "license: Apache-2.0\ntags:\n  - stereo\n  - depth\n")
    problems = spec_problems(copy)
    assert len(problems) == 1 and ": tags: not a front matter field" in problems[0], problems
    assert any("Unexpected fields in frontmatter: tags" in e for e in skills_ref.validate(copy))


# (description, edit of SKILL.md, field our validator names, words of our message). The reference validator
# must refuse each one as well: our rules are the reference's.
BROKEN = [
    ("flow map", ("  tool: depth_net\n", "  tool: {name: depth_net}\n"), "metadata.tool", "flow style"),
    ("anchor", ("license: Apache-2.0", "license: &lic Apache-2.0"), "license", "anchors"),
    ("type tag", ("license: Apache-2.0", "license: !!str Apache-2.0"), "license", "type tags"),
    ("duplicate", ("license: Apache-2.0\n", "license: Apache-2.0\nlicense: MIT\n"), "license", "duplicate key"),
    ("unknown field", ("license: Apache-2.0\n", "license: Apache-2.0\nversion: 1.0\n"), "version", "not a front"),
    ("upper case", ("name: depth-net-fast-stereo", "name: depth-net-Fast-stereo"), "name", "lowercase"),
    ("double hyphen", ("name: depth-net-fast-stereo", "name: depth-net--fast-stereo"), "name", "consecutive"),
    ("folder", ("name: depth-net-fast-stereo", "name: fast-stereo"), "name", "folder name"),
    ("underscore", ("name: depth-net-fast-stereo", "name: depth_net_fast_stereo"), "name", "only letters"),
    ("long description", (DESCRIPTION_LINE, DESCRIPTION_LINE + "  " + "x" * 1024 + "\n"), "description", "1024"),
    ("no description", ("description: >-", "summary: >-"), "description", "required"),
    ("long compatibility", ("compatibility: >-\n", "compatibility: >-\n  " + "y" * 500 + "\n"), "compatibility", "500"),
]


@pytest.mark.parametrize(("what", "change", "field", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_our_rules_are_the_reference_rules(
    skill_copy, what: str, change: tuple[str, str], field: str, words: str
) -> None:
    copy = skill_copy()
    edit(copy / "SKILL.md", *change)
    problems = spec_problems(copy)
    assert any(f": {field}: " in p and words in p for p in problems), (what, problems)
    assert all(p.startswith(f"{FFS}/SKILL.md") for p in problems)
    assert skills_ref.validate(copy), f"the reference validator accepts the {what} case"


def test_dashes_inside_the_front_matter_are_reported(skill_copy) -> None:
    """The reference parser ends the front matter at the first '---', even inside a line: it reads a cut
    description and no metadata, without a word. We report the line."""
    copy = skill_copy()
    edit(copy / "SKILL.md", "(model_best_bp2_serialize.pth)", "(model_best---bp2.pth)")
    assert any(": description: contains '---'" in p for p in spec_problems(copy))
    props = skills_ref.read_properties(copy)
    assert props.description.endswith("(model_best") and not props.metadata


def test_metadata_values_must_be_strings(skill_copy) -> None:
    """The specification maps metadata strings to strings; the reference parser str()s a nested value silently,
    we report it."""
    copy = skill_copy()
    edit(copy / "SKILL.md", "  tool: depth_net\n", "  tool: depth_net\n  extra:\n    a: b\n")
    assert any(": metadata.extra: must be a string" in p for p in spec_problems(copy))


def test_metadata_network_arch_must_match_skill_info(skill_copy) -> None:
    copy = skill_copy()
    edit(copy / "SKILL.md", "  network_arch: FastFoundationStereo", "  network_arch: FoundationStereo")
    assert (
        f"{FFS}/SKILL.md: metadata.network_arch: 'FoundationStereo' differs from references/skill_info.yaml's "
        "'FastFoundationStereo'" in [str(p) for p in check_skill_dir(copy)]
    )


def test_body_of_500_lines_is_reported(skill_copy) -> None:
    copy = skill_copy()
    with (copy / "SKILL.md").open("a", encoding="utf-8") as fh:
        fh.write("line\n" * 500)
    assert any(f"{FFS}/SKILL.md: body:" in p and "under 500 lines" in p for p in map(str, check_skill_dir(copy)))
