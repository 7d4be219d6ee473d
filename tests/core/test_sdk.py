"""The Python SDK surface: skillbank.plan and skillbank.list_skills, lazily imported."""

from __future__ import annotations

import pytest

import skillbank
from skillbank import schemagen


def test_sdk_lists_and_plans():
    names = {s.name if hasattr(s, "name") else s["name"] for s in skillbank.list_skills()}
    assert "depth-net-fast-stereo" in names
    plan = skillbank.plan("fine-tune fast stereo on /data/kitti/train.txt, no HPO")
    assert plan.route == "direct_train"
    assert plan.automl_policy == "off"


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        skillbank.nope  # noqa: B018


def test_generation_refuses_a_broken_skill_info(tmp_path):
    bad = tmp_path / "skills" / "broken" / "references"
    bad.mkdir(parents=True)
    (bad / "skill_info.yaml").write_text("network_arch: FastFoundationStereo\nactions: {train: [\n")
    with pytest.raises(ValueError, match=r"skill_info\.yaml: invalid YAML"):
        schemagen.render_all(
            schemas_root=tmp_path / "s", references_root=tmp_path / "r", skills_root=tmp_path / "skills"
        )
