"""Fixtures of the skill-bank tests: our skill folders, and copies of them to break on purpose."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from skilltest_helpers import FFS

from skillbank.registry import Registry, builtin_root


@pytest.fixture(autouse=True)
def _no_user_skills(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see our skills only, whatever the caller's SKILLBANK_SKILLS_PATH says."""
    monkeypatch.delenv("SKILLBANK_SKILLS_PATH", raising=False)


@pytest.fixture
def registry(_no_user_skills: None) -> Registry:
    """Our shipped skills."""
    return Registry.load()


@pytest.fixture
def skill_copy(tmp_path: Path):
    """Copy one of our skills into tmp_path/skills/<name> and return the copy's folder."""

    def make(name: str = FFS, new_name: str | None = None) -> Path:
        dst = tmp_path / "skills" / (new_name or name)
        shutil.copytree(builtin_root() / name, dst)
        return dst

    return make
