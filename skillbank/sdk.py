"""The Python SDK: plan, submit, watch and cancel depth_net jobs in a workspace.

    from skillbank import Client

    client = Client("runs")                       # <workspace>/jobs.db, jobs under runs/jobs/<id>/
    jobs = client.submit("train fast stereo on /d/train.txt, validate on /d/val.txt, 1 epoch, no HPO, "
                         "then evaluate it and export it")
    client.wait(jobs[-1].id, timeout=3600)        # each job starts when its parent COMPLETEs
    print(client.status(jobs[1].id).kpi)          # e.g. {"val/epe": ...}

``submit`` returns the chain's jobs (PENDING) and makes sure the workspace's executor runs (a detached
process that exits when idle; :mod:`skillbank.jobs.executor`). ``parent_job_id`` may name an existing job
whose artefact the first job takes. SQLAlchemy is imported only when a Client is made.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

DEFAULT_WORKSPACE = "skillbank_jobs"


class Client:
    """Jobs of one workspace. ``db_url``: a SQLAlchemy URL (PostgreSQL) instead of ``<workspace>/jobs.db``;
    ``max_jobs``: jobs run at once by the workspace's executor; ``start_executor=False`` leaves running
    to an executor started elsewhere (``python -m skillbank.jobs.executor``)."""

    def __init__(
        self,
        workspace: str | os.PathLike[str] | None = None,
        db_url: str | None = None,
        max_jobs: int | None = None,
        start_executor: bool = True,
        idle_exit_s: float = 30.0,
    ) -> None:
        from skillbank.jobs.store import Store

        workspace = workspace or os.environ.get("SKILLBANK_WORKSPACE") or DEFAULT_WORKSPACE
        self.db_url = db_url or os.environ.get("SKILLBANK_DB_URL")
        self.store = Store(workspace, self.db_url)
        self.workspace = self.store.workspace
        self.max_jobs = max_jobs
        self.start_executor = start_executor
        self.idle_exit_s = idle_exit_s

    # ------------------------------------------------------------------ planning and submitting
    def plan(self, request: Any) -> Any:
        """The plan of ``request`` (words, JSON, dict or ToolCall); raises PlanQuestion when unclear."""
        from skillbank.router import plan

        return plan(request)

    def submit(
        self,
        request: Any,
        parent_job_id: str | None = None,
        overrides: dict[str, Any] | None = None,
        backend: str = "local",
    ) -> list[Any]:
        """Store the jobs of ``request`` (a chain for "..., then ...") and start the executor.

        ``parent_job_id``: a stored job the first action takes its input from (as if the request named it).
        ``overrides``: extra spec keys (nested or dotted) applied to every job of the chain.
        ``backend``: ``local`` (this machine) or ``slurm`` (see :mod:`skillbank.jobs.slurm`).
        A request the planner cannot plan raises :class:`skillbank.jobs.chain.SubmitError` with the question
        and its ``kind``.
        """
        from skillbank.jobs.chain import submit_chain

        if backend not in ("local", "slurm"):
            raise ValueError(f"backend {backend!r}: expected local or slurm")
        jobs = submit_chain(self.store, request, parent_job_id, overrides, backend)
        self.kick()
        return jobs

    def kick(self) -> bool:
        """Start the workspace's executor when jobs wait and none runs; True when one was started."""
        if not self.start_executor:
            return False
        from skillbank.jobs.executor import ensure_executor

        if not self.store.list(status=["PENDING", "RUNNING"], backend="local", limit=1) and not self.store.list(
            status=["PENDING", "RUNNING"], backend="slurm", limit=1
        ):
            return False
        return ensure_executor(self.workspace, self.db_url, self.max_jobs, self.idle_exit_s)

    # ------------------------------------------------------------------ watching
    def status(self, job_id: str) -> Any:
        """The job as stored now (status, exit_code, kpi, progress, message, results_dir, ...)."""
        return self.store.get(job_id)

    def jobs(
        self, status: str | list[str] | None = None, action: str | None = None, parent_job_id: str | None = None
    ) -> list[Any]:
        """Jobs of the workspace, oldest first, filtered."""
        return self.store.list(status=status, action=action, parent_job_id=parent_job_id)

    def logs(self, job_id: str, tail: int | None = None) -> str:
        """The job's output (``<job_dir>/job.log``); the last ``tail`` lines when given."""
        job = self.store.get(job_id)
        path = Path(job.job_dir) / "job.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        if tail is not None:
            lines = text.splitlines()
            text = "\n".join(lines[-tail:] if tail > 0 else [])
        return text

    def wait(self, job_id: str | list[str], timeout: float | None = None, poll_s: float = 1.0) -> Any:
        """Block until the job(s) end; returns the job (or the list). TimeoutError after ``timeout`` s."""
        from skillbank.jobs.store import FINAL

        ids = [job_id] if isinstance(job_id, str) else list(job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        last_kick = 0.0
        while True:
            jobs = [self.store.get(i) for i in ids]
            if all(j.status in FINAL for j in jobs):
                return jobs[0] if isinstance(job_id, str) else jobs
            if time.monotonic() - last_kick > 5.0:  # an executor that died (or idled out) is restarted
                self.kick()
                last_kick = time.monotonic()
            if deadline is not None and time.monotonic() > deadline:
                left = ", ".join(f"{j.id} {j.status}" for j in jobs if j.status not in FINAL)
                raise TimeoutError(f"wait: still running after {timeout} s: {left}")
            time.sleep(poll_s)

    def cancel(self, job_id: str, reason: str = "canceled by the user") -> Any:
        """Cancel a job: PENDING ones end now, a RUNNING one gets SIGTERM (then SIGKILL after the grace
        period); its PENDING descendants end CANCELED with the reason."""
        job = self.store.request_cancel(job_id, reason)
        if job.status == "CANCELED":
            self.store.cancel_descendants(job.id, f"parent job {job.id} ({job.action}) CANCELED: {reason}")
        else:
            self.kick()
        return job
