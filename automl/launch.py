"""How a trial's ``depth_net`` run is started, watched and stopped: the one seam between the search and processes.

:class:`TrialLauncher` starts ``depth_net <action> -e <spec>`` for one trial (its own results folder, its
spec saved there first) and hands back a :class:`RunningAction`: ``poll()`` (exit code or None),
``wait()``, ``stop()`` (SIGTERM, then SIGKILL after a grace period: depth_net train writes an interrupt
checkpoint on SIGTERM). The search reads progress from the run's ``status.json``, never from the process.

:class:`SubprocessLauncher` runs the action as a child process (argv list, no shell). The child gets
``PR_SET_PDEATHSIG`` (Linux) so it dies with the runner: a runner killed with ``kill -9`` leaves no trial
training on behind its back while the study retries that trial. :func:`trial_env` gives every trial of a
study one TorchInductor cache folder, so a kernel compiled by the first trial (``train.compile``) is
loaded, not compiled again, by the next.

:class:`JobsLauncher` makes each run a job of the skill bank's job store (:mod:`skillbank.jobs`): the
workspace's executor runs it (within its caps on jobs and GPUs), the job is a child of the AutoML job
when the study itself runs as one, ``poll()`` follows the job's status and ``stop()`` asks the store to
cancel it (the executor sends SIGTERM, then SIGKILL). ``skillbank automl run --jobs WORKSPACE`` uses it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

#: Seconds between SIGTERM and SIGKILL when a run is stopped.
STOP_GRACE_S = 20.0


class RunningAction(Protocol):
    """A started depth_net action."""

    results_dir: Path

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def stop(self) -> int: ...


class TrialLauncher(Protocol):
    """Starts depth_net actions for trials and the baseline."""

    def launch(self, action: str, spec_path: Path, results_dir: Path, *, name: str) -> RunningAction: ...


def trial_env(automl_dir: str | Path) -> dict[str, str]:
    """Environment shared by a study's runs: one TorchInductor cache (unless the user set one)."""
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return {}
    return {"TORCHINDUCTOR_CACHE_DIR": str(Path(automl_dir).resolve() / "inductor_cache")}


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class SubprocessAction:
    """A depth_net action running as a child process; its stdout/stderr go to ``<results_dir>/runner.log``."""

    process: subprocess.Popen
    results_dir: Path
    grace_s: float = STOP_GRACE_S
    _log: object = field(default=None, repr=False)

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is not None:
            self._close()
        return code

    def wait(self, timeout: float | None = None) -> int:
        code = self.process.wait(timeout)
        self._close()
        return code

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if still alive after the grace period; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.wait()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None


@dataclass
class SubprocessLauncher:
    """Runs ``python -m skillbank.runtime.cli <action> -e <spec>`` (the depth_net entry point) per trial.

    ``env`` is added to this process's environment; ``command`` replaces the entry point (a benchmark's
    wrapper that times the steps, say)."""

    env: dict[str, str] = field(default_factory=dict)
    grace_s: float = STOP_GRACE_S
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "skillbank.runtime.cli"])

    def launch(self, action: str, spec_path: Path, results_dir: Path, *, name: str) -> SubprocessAction:
        results_dir.mkdir(parents=True, exist_ok=True)
        argv = [*self.command, action, "-e", str(spec_path)]
        log = open(results_dir / "runner.log", "ab")  # noqa: SIM115 - closed when the process ends
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(results_dir),
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
        )
        return SubprocessAction(process, results_dir, self.grace_s, log)


def wait_until_done(run: RunningAction, poll_s: float = 0.5, timeout: float | None = None) -> int:
    """Block until ``run`` ends (polling, so a caller's thread can be interrupted); returns its exit code."""
    start = time.monotonic()
    while True:
        code = run.poll()
        if code is not None:
            return code
        if timeout is not None and time.monotonic() - start > timeout:
            return run.stop()
        time.sleep(poll_s)


#: job status -> exit code when the store does not know the run's own (killed, adopted after a crash)
_JOB_EXIT = {"COMPLETE": 0, "CANCELED": 130, "FAILED": 1}


@dataclass
class JobAction:
    """A depth_net action running as a job of the job store."""

    store: object
    job_id: str
    results_dir: Path
    poll_s: float = 1.0

    def poll(self) -> int | None:
        job = self.store.get(self.job_id)  # type: ignore[attr-defined]
        if job.status not in _JOB_EXIT:
            return None
        return job.exit_code if job.exit_code is not None else _JOB_EXIT[job.status]

    def wait(self, timeout: float | None = None) -> int:
        return wait_until_done(self, self.poll_s, timeout)

    def stop(self, reason: str = "stopped by AutoML (pruned)") -> int:
        job = self.store.get(self.job_id)  # type: ignore[attr-defined]
        if job.status not in _JOB_EXIT:
            self.store.request_cancel(self.job_id, reason)  # type: ignore[attr-defined]
        while (code := self.poll()) is None:
            time.sleep(self.poll_s)
        return code


@dataclass
class JobsLauncher:
    """Submits each run as a job (route ``automl_trial``: it may start while its parent, the AutoML job
    ``parent_job_id``, runs) and makes sure the workspace's executor runs."""

    workspace: str
    db_url: str | None = None
    parent_job_id: str | None = None
    skill: str = ""
    max_jobs: int | None = None
    _store: object = field(default=None, repr=False)

    @property
    def store(self) -> object:
        if self._store is None:
            from skillbank.jobs.store import Store

            self._store = Store(self.workspace, self.db_url)
        return self._store

    def launch(self, action: str, spec_path: Path, results_dir: Path, *, name: str) -> JobAction:
        import yaml

        from skillbank.jobs.executor import ensure_executor
        from skillbank.jobs.store import Job

        store = self.store
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
        gpus = int((spec.get(action) or {}).get("num_gpus", (spec.get("train") or {}).get("num_gpus", 0)) or 0)
        job = Job(
            id=store.new_id(),  # type: ignore[attr-defined]
            skill=self.skill,
            action=action,
            route="automl_trial",
            automl_policy="off",
            spec=yaml.safe_dump(spec, sort_keys=False),
            results_dir=str(results_dir),
            parent_job_id=self.parent_job_id,
            job_dir=str(results_dir),
            request=name,
            gpus_needed=gpus,
            command=["depth_net", action, "-e", str(spec_path)],
            options={"automl_trial": True},
        )
        store.add(job)  # type: ignore[attr-defined]
        ensure_executor(self.workspace, self.db_url, self.max_jobs)
        return JobAction(store, job.id, results_dir)
