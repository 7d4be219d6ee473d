"""A crashed executor's RUNNING jobs: closed when their process is gone, adopted when it still runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from jobtest_helpers import make_job

from skillbank.jobs.executor import Executor
from skillbank.jobs.store import Job, Store

DEAD_EXECUTOR = f"{socket.gethostname()}:999999999"


def _running(store: Store, tmp_path: Path, name: str, pid: int | None) -> Job:
    job_dir = tmp_path / name
    (job_dir / "convert").mkdir(parents=True)
    job = store.add(_convert_job(job_dir))
    store.update(job.id, status="RUNNING", executor=DEAD_EXECUTOR, pid=pid)
    return store.get(job.id)


def _convert_job(job_dir: Path) -> Job:
    return make_job(skill="s", results_dir=str(job_dir / "convert"), job_dir=str(job_dir))


def test_orphans_are_closed_or_adopted(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws")
    gone = _running(store, tmp_path, "gone", pid=None)
    child = store.add(make_job(skill="s", action="evaluate", results_dir="/x", parent_job_id=gone.id))
    alive = _running(store, tmp_path, "alive", pid=None)
    Path(alive.results_dir, "status.json").write_text(
        '{"status": "STARTED", "message": "go"}\n{"status": "SUCCESS", "message": "converted"}\n'
    )
    marker = str(Path(alive.job_dir) / "spec.yaml")  # the run's command line names its spec
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])
    store.update(alive.id, pid=proc.pid)
    deadline = time.monotonic() + 30  # until its exec, the child's /proc cmdline is pytest's, not the run's
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    while Path("/proc").is_dir() and marker not in cmdline.read_bytes().decode(errors="replace"):
        assert time.monotonic() < deadline
        time.sleep(0.01)

    try:
        executor = Executor(store, gpus=[])
        assert sorted(executor.recover()) == sorted([gone.id, alive.id])
        gone = store.get(gone.id)
        assert gone.status == "FAILED" and gone.message.startswith(f"orphaned: executor {DEAD_EXECUTOR} died")
        assert store.get(child.id).status == "CANCELED"
        assert store.get(alive.id).status == "RUNNING" and store.get(alive.id).executor == executor.id
        executor.step()
        assert store.get(alive.id).status == "RUNNING"  # followed while its process lives
        proc.terminate()
        deadline = time.monotonic() + 30
        while store.get(alive.id).status == "RUNNING":
            assert time.monotonic() < deadline
            executor.step()
            proc.poll()  # reap our own test child so its pid goes away
            time.sleep(0.2)
        alive = store.get(alive.id)
        assert alive.status == "COMPLETE" and alive.exit_code is None and "exit code unknown" in alive.message
    finally:
        proc.kill()
        proc.wait()


def test_cancel_kills_a_run_that_ignores_sigterm_after_the_grace(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws")
    job_dir = tmp_path / "stubborn"
    job_dir.mkdir()
    job = store.add(_convert_job(job_dir))
    executor = Executor(store, gpus=[], grace_s=1.0)
    job = store.claim(executor.id, 0)
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    started = executor.backend("local").start(job, [sys.executable, "-c", code], dict(os.environ))
    job.pid = started["pid"]
    store.update(job.id, pid=job.pid)
    executor.running[job.id] = job
    deadline = time.monotonic() + 30
    while "up" not in (job_dir / "job.log").read_text():  # SIGTERM is ignored from here on
        assert time.monotonic() < deadline
        time.sleep(0.1)
    store.request_cancel(job.id)
    t0 = time.monotonic()
    while store.get(job.id).status == "RUNNING":
        assert time.monotonic() < deadline
        executor.step()
        time.sleep(0.1)
    job = store.get(job.id)
    assert job.status == "CANCELED" and job.exit_code == 128 + 9  # SIGKILL after the 1 s grace
    assert 1.0 <= time.monotonic() - t0 < 20
