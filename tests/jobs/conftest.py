"""Fixtures of the job tests: a workspace, the quickstart's synthetic data and spec overrides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jobtest_helpers import QUICKSTART

pytest.importorskip("sqlalchemy")


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``depth_net convert`` synthetic pairs (the quickstart's data.yaml): folder with train.txt, val.txt."""
    out = tmp_path_factory.mktemp("data")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "skillbank.runtime.cli",
            "convert",
            "-e",
            str(QUICKSTART / "data.yaml"),
            f"results_dir={out}",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out / "convert"


@pytest.fixture
def overrides() -> dict:
    """The quickstart's overrides: a small FFS on the CPU."""
    return yaml.safe_load((QUICKSTART / "overrides.yaml").read_text())
