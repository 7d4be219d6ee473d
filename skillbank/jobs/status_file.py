"""Reading a run's ``status.json`` (JSON Lines, one event a line) without importing the runtime.

A job's outcome comes from the runner's exit code and this file, never from words in a log:
exit 0 and a last ``SUCCESS`` event -> COMPLETE (also when the exit code cannot be known: a run adopted
after its executor died, a Slurm job that left no result file); anything else -> FAILED with the
``FAILURE`` event's message. While a run goes on, its ``RUNNING`` events give the progress (epoch, max_epoch, eta, kpi).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Exit codes of ``depth_net`` (runtime/runner.py) and what they mean.
EXIT_CODES = {
    0: "success",
    1: "execution error",
    2: "configuration error",
    3: "file system error",
    4: "training diverged",
    5: "not implemented",
    6: "missing dependency",
    130: "interrupted",
}


@dataclass
class RunState:
    last_status: str | None = None
    message: str = ""
    kpi: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    started: int = 0


def read_run_state(status_path: str | Path) -> RunState:
    """What ``status.json`` says so far (a missing file or a line being written is no error)."""
    path = Path(status_path)
    state = RunState()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return state
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(event, dict):
            continue
        state.last_status = event.get("status")
        state.message = str(event.get("message") or "")
        if state.last_status == "STARTED":
            state.started += 1
        if event.get("kpi"):
            state.kpi = dict(event["kpi"])
        cat = event.get("categorical") or {}
        if state.last_status == "RUNNING":
            state.progress = {k: cat[k] for k in ("epoch", "max_epoch", "step", "eta", "time_per_epoch") if k in cat}
    return state


def outcome(exit_code: int | None, state: RunState, canceled: bool) -> tuple[str, str]:
    """(job status, message) from the runner's exit code and its status.json."""
    if canceled:
        return "CANCELED", state.message if state.last_status == "FAILURE" else "canceled"
    if exit_code == 0 and state.last_status == "SUCCESS":
        return "COMPLETE", state.message
    if exit_code is None and state.last_status == "SUCCESS":  # adopted run or Slurm job without a result file
        return "COMPLETE", f"{state.message} (exit code unknown; status.json ends in SUCCESS)"
    if exit_code == 0:
        return "FAILED", f"depth_net exited 0 but status.json's last event is {state.last_status or 'missing'}"
    meaning = EXIT_CODES.get(exit_code if exit_code is not None else -1, "killed or unknown")
    detail = state.message if state.last_status == "FAILURE" else "no FAILURE line in status.json"
    return "FAILED", f"exit {exit_code} ({meaning}): {detail}"
