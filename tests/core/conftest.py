"""Helpers for the core tests (specs, status.json, the runner, atomic writes): write specs, run depth_net
in-process, read status.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from skillbank.runtime.runner import run_action
from skillbank.runtime.status import read_status


class SpecRunner:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path

    def write(self, data: dict[str, Any], name: str = "spec.yaml") -> Path:
        path = self.tmp / name
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    def run(self, action: str, data: dict[str, Any], overrides: list[str] | None = None) -> tuple[int, list[dict]]:
        spec = self.write(data)
        code = run_action(action, str(spec), overrides or [])
        status = read_status(self.tmp / "results" / action / "status.json")
        return code, status


@pytest.fixture
def spec_runner(tmp_path: Path) -> SpecRunner:
    return SpecRunner(tmp_path)


@pytest.fixture
def annotation(tmp_path: Path) -> Path:
    """A 3-column annotation file whose images need not exist (loading checks only the file itself)."""
    path = tmp_path / "train.txt"
    path.write_text("left/0.png right/0.png disp/0.pfm\n", encoding="utf-8")
    return path
