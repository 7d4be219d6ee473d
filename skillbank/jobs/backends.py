"""Where a job's process runs: :class:`LocalBackend` (a subprocess on this machine); the Slurm
backend (an sbatch job through submitit) is :mod:`.slurm`.

Both start ``depth_net <action> -e <spec.yaml>`` as an argument list (no shell, nothing built from user
text), in the job's folder, with its output in ``<job_dir>/job.log``. ``poll`` returns None while the
run goes on and its exit code (None when unknown) once it ended; ``terminate`` sends SIGTERM (the
runtime turns it into an interrupt and the train action writes its interrupt checkpoint); ``kill``
ends what is left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from skillbank.jobs.store import Job


def depth_net_argv(action: str, spec_path: str | Path) -> list[str]:
    """``depth_net <action> -e <spec>``: the console script beside this Python, else ``python -m``."""
    script = Path(sys.executable).parent / "depth_net"
    if script.is_file() and os.access(script, os.X_OK):
        exe = [str(script)]
    elif shutil.which("depth_net"):
        exe = [str(shutil.which("depth_net"))]
    else:
        exe = [sys.executable, "-m", "skillbank.runtime.cli"]
    return [*exe, action, "-e", str(spec_path)]


def pid_alive(pid: int | None, marker: str | None = None) -> bool:
    """True while process ``pid`` exists (and its command line holds ``marker``, against pid reuse)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if marker:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return True  # no /proc: trust the pid
        if marker not in cmdline:
            return False
        with contextlib.suppress(OSError):  # a zombie child of ours has ended
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
                return False
    return True


class LocalBackend:
    name = "local"

    def __init__(self) -> None:
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, job: Job, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
        log = open(Path(job.job_dir) / "job.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                argv,
                cwd=job.job_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        finally:
            log.close()
        self._procs[job.id] = proc
        return {"pid": proc.pid}

    def adopt(self, job: Job) -> bool:
        """Follow a job a dead executor left running (not our child: its exit code stays unknown)."""
        return pid_alive(job.pid, str(Path(job.job_dir) / "spec.yaml"))

    def poll(self, job: Job) -> tuple[bool, int | None]:
        """(ended, exit code)."""
        proc = self._procs.get(job.id)
        if proc is not None:
            code = proc.poll()
            if code is None:
                return False, None
            self._procs.pop(job.id, None)
            return True, (code if code >= 0 else 128 - code)  # killed by signal N -> 128 + N
        return (not pid_alive(job.pid, str(Path(job.job_dir) / "spec.yaml"))), None

    def terminate(self, job: Job) -> None:
        if job.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(job.pid, signal.SIGTERM)

    def kill(self, job: Job) -> None:
        if job.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.pid, signal.SIGKILL)  # the job leads its own session: workers go too

    def forget(self, job: Job) -> None:
        self._procs.pop(job.id, None)
