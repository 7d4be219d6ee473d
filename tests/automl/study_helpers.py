"""Helpers of the AutoML study tests: run the CLI, read a study's summary and trial folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SKILLBANK = [sys.executable, "-c", "from skillbank.cli import main; main()"]


def automl(*args: str, timeout: float = 3600, **popen: Any) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [*SKILLBANK, "automl", *args], capture_output=True, text=True, timeout=timeout, env=env, **popen
    )


def start(*args: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    fh = open(log, "w")  # noqa: SIM115 - the child owns it
    return subprocess.Popen([*SKILLBANK, "automl", *args], stdout=fh, stderr=subprocess.STDOUT, env=env)


def summary(results: Path) -> dict[str, Any]:
    return json.loads((results / "automl" / "summary.json").read_text())


def starts(folder: Path) -> int:
    """How many times a depth_net run started in this folder (STARTED lines of its status.json)."""
    path = folder / "status.json"
    if not path.exists():
        return 0
    return sum(json.loads(line)["status"] == "STARTED" for line in path.read_text().splitlines() if line.strip())
