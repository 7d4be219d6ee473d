"""``skillbank run`` / ``skillbank jobs``: the JSON contract, one-line errors, and a light ``skillbank list``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from jobtest_helpers import convert_request


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from skillbank.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_wait_json_and_jobs_commands(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    done = _cli("run", json.dumps(convert_request()), "--workspace", ws, "--wait", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    (job,) = out["jobs"]
    assert set(job) == {"id", "action", "status", "parent_job_id", "results_dir", "kpi"}
    assert job["status"] == "COMPLETE" and job["action"] == "convert" and job["parent_job_id"] is None
    listed = json.loads(_cli("jobs", "list", "--workspace", ws, "--json").stdout)
    assert listed == out
    show = _cli("jobs", "show", job["id"], "--workspace", ws)
    assert "status:        COMPLETE" in show.stdout and "exit_code:     0" in show.stdout
    assert "SUCCESS" in _cli("jobs", "logs", job["id"], "--workspace", ws, "--tail", "2").stdout
    missing = _cli("jobs", "show", "zzzzzz", "--workspace", ws)
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0 and "zzzzzz" in missing.stderr
    ended = _cli("jobs", "cancel", job["id"], "--workspace", ws, "--json")
    assert json.loads(ended.stdout)["jobs"][0]["status"] == "COMPLETE"  # an ended job stays as it was


def test_run_without_wait_returns_and_the_executor_runs_the_job(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    started = time.monotonic()
    out = _cli("run", json.dumps(convert_request()), "--workspace", str(ws), "--json")
    assert out.returncode == 0, out.stderr
    job_id = json.loads(out.stdout)["jobs"][0]["id"]
    assert json.loads(out.stdout)["jobs"][0]["status"] == "PENDING"
    from skillbank.sdk import Client

    assert Client(ws, start_executor=False).wait(job_id, timeout=240).status == "COMPLETE"
    assert time.monotonic() - started < 240


def test_unplannable_request_is_one_line_exit_2(tmp_path: Path) -> None:
    out = _cli("run", "hello there", "--workspace", str(tmp_path / "ws"))
    assert out.returncode == 2 and out.stderr.startswith("skillbank: Which model?")
    assert out.stderr.strip().count("\n") == 0


def test_listing_stays_light() -> None:
    code = (
        "import sys, skillbank, skillbank.cli; skillbank.Client; "
        "print(sorted(m for m in ('torch', 'sqlalchemy', 'submitit', 'mcp') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
    listed = _cli("list")
    assert listed.returncode == 0 and "depth-net-fast-stereo" in listed.stdout
