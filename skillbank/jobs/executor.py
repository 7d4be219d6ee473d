"""The executor: claims PENDING jobs from the store and runs them, within caps on jobs and GPUs.

One loop (:meth:`Executor.step`, every ``poll_s``):

1. reap ended runs: the job's status comes from the exit code and ``status.json``
   (:func:`.status_file.outcome`); the descendants of a job that did not COMPLETE are CANCELED with the
   reason;
2. stop the runs whose cancel was asked: SIGTERM (the runtime writes its interrupt checkpoint and exits
   130), SIGKILL to the job's process group after ``grace_s``;
3. follow running jobs' ``status.json`` (epoch, max_epoch, eta, kpi) into the store;
4. start jobs while fewer than ``max_jobs`` run: a job is claimed atomically (:meth:`.store.Store.claim`),
   gets ``CUDA_VISIBLE_DEVICES`` set to free GPU ids (empty for a CPU job; the spec's ``gpu_ids``
   renumbered to them), its parent's artefact written into its spec (the keys of the plan's
   ``from_parent``, :func:`.parents.fill_planned`), and
   ``depth_net <action> -e <job_dir>/spec.yaml`` started by its backend: a local subprocess
   (:mod:`.backends`) or an sbatch job (:mod:`.slurm`, claimed without a GPU cap: Slurm places them).

Route ``automl`` jobs run ``skillbank automl run -e <spec> --jobs <workspace> --parent-job <id>``: the
study's trials come back to this store as child jobs (route ``automl_trial``: runnable while their
parent runs, and they take nothing from it). The AutoML job itself holds no GPU and no ``max_jobs``
slot (its trials do), and its status is read from ``<results_dir>/automl/status.json``.

On start, :meth:`Executor.recover` finds RUNNING jobs whose executor died: a run still alive is
adopted (followed to its end; its exit code is unknown so status.json decides), a dead one is marked
from its status.json (FAILED unless it holds SUCCESS).

Process model: one executor per workspace and host, held by an exclusive ``flock`` on
``<workspace>/executor.lock``. :func:`ensure_executor` starts one, detached
(``python -m skillbank.jobs.executor --workspace W``), when none holds the lock; it exits after
``idle_exit_s`` with nothing PENDING or RUNNING, and re-checks the store after releasing the lock so a job
submitted at that moment is never stranded.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from skillbank.jobs.backends import LocalBackend, depth_net_argv
from skillbank.jobs.parents import check_parent_ready, fill_from_parent, fill_planned
from skillbank.jobs.status_file import outcome, read_run_state
from skillbank.jobs.store import Job, JobError, Store

LOCK_NAME = "executor.lock"


def detect_gpus() -> list[str]:
    """GPU ids this host may hand out: ``SKILLBANK_GPUS`` ("0,1"), else ``CUDA_VISIBLE_DEVICES``, else
    ``nvidia-smi -L``; none on a CPU machine."""
    for var in ("SKILLBANK_GPUS", "CUDA_VISIBLE_DEVICES"):
        value = os.environ.get(var)
        if value is not None:
            return [g.strip() for g in value.split(",") if g.strip()]
    if shutil.which("nvidia-smi"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
            return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]
    return []


def automl_argv(spec_path: Path, store: Store, job_id: str) -> list[str]:
    """``skillbank automl run`` for an AutoML job: its trials become child jobs of ``job_id`` in ``store`` (a
database URL other than the workspace's SQLite goes in the environment, SKILLBANK_DB_URL, not argv)."""
    return [sys.executable, "-c", "from skillbank.cli import main; main()", "automl", "run", "-e", str(spec_path),
            "--jobs", str(store.workspace), "--parent-job", job_id]


def write_spec(job: Job, spec: dict[str, Any]) -> Path:
    """``<job_dir>/spec.yaml`` written atomically."""
    import yaml

    from skillbank.atomic import atomic_write

    return atomic_write(Path(job.job_dir) / "spec.yaml", yaml.safe_dump(spec, sort_keys=False))


class Executor:
    def __init__(
        self, store: Store, max_jobs: int = 1, gpus: list[str] | None = None, grace_s: float = 60.0, poll_s: float = 0.5
    ) -> None:
        self.store = store
        self.max_jobs = max(1, int(max_jobs))
        self.gpus = list(detect_gpus() if gpus is None else gpus)
        self.grace_s = grace_s
        self.poll_s = poll_s
        self.id = f"{socket.gethostname()}:{os.getpid()}"
        self.backends: dict[str, Any] = {"local": LocalBackend()}
        self.max_slurm_jobs = int(os.environ.get("SKILLBANK_MAX_SLURM_JOBS", "64"))
        self.running: dict[str, Job] = {}
        self.term_sent: dict[str, float] = {}
        self._last_progress = 0.0

    # -------------------------------------------------------------- helpers
    def backend(self, name: str) -> Any:
        """The backend of that name (the Slurm one is made, importing submitit, on first use)."""
        if name not in self.backends:
            if name != "slurm":
                raise ValueError(f"backend {name!r}: expected local or slurm")
            from skillbank.jobs.slurm import SlurmBackend

            self.backends[name] = SlurmBackend()
        return self.backends[name]

    def slots_used(self) -> int:
        """Running jobs that count against ``max_jobs`` (an AutoML job does not: its trials do)."""
        return sum(job.backend == "local" and job.route != "automl" for job in self.running.values())

    def free_gpus(self) -> list[str]:
        used = {g for job in self.running.values() if job.backend == "local" for g in (job.gpus or "").split(",") if g}
        return [g for g in self.gpus if g not in used]

    def _executor_alive(self, executor: str | None) -> bool | None:
        """Whether the executor ``host:pid`` lives (None: another host, cannot tell)."""
        if not executor or ":" not in executor:
            return False
        host, pid = executor.rsplit(":", 1)
        if host != socket.gethostname():
            return None
        if executor == self.id:
            return True
        from skillbank.jobs.backends import pid_alive

        return pid_alive(int(pid), "skillbank.jobs.executor")

    # -------------------------------------------------------------- lifecycle
    def recover(self) -> list[str]:
        """Adopt or close RUNNING jobs whose executor died; returns the ids handled."""
        handled = []
        for job in self.store.list(status="RUNNING"):
            if job.id in self.running or self._executor_alive(job.executor) is not False:
                continue
            if self.backend(job.backend).adopt(job) and self.store.update(job.id, expect="RUNNING", executor=self.id):
                job.executor = self.id
                self.running[job.id] = job
                handled.append(job.id)
                continue
            state = read_run_state(Path(job.results_dir) / "status.json")
            if state.last_status == "SUCCESS":
                status, message = "COMPLETE", state.message + " (recorded after its executor died; exit code unknown)"
            else:
                status = "CANCELED" if job.cancel_requested else "FAILED"
                message = (
                    f"orphaned: executor {job.executor} died while the job ran and its process is gone; "
                    f"status.json's last event: {state.last_status or 'none'}"
                )
            if self.store.finish(job.id, status, None, message, kpi=state.kpi):
                handled.append(job.id)
                if status != "COMPLETE":
                    self.store.cancel_descendants(job.id, f"parent job {job.id} {status}: {message}")
        return handled

    def _close(self, job: Job, status: str, code: int | None, message: str, kpi: dict[str, Any]) -> None:
        self.running.pop(job.id, None)
        self.term_sent.pop(job.id, None)
        self.backend(job.backend).forget(job)
        if self.store.finish(job.id, status, code, message, kpi=kpi) and status != "COMPLETE":
            self.store.cancel_descendants(job.id, f"parent job {job.id} ({job.action}) {status}: {message}")

    def reap(self) -> None:
        for job in list(self.running.values()):
            ended, code = self.backend(job.backend).poll(job)
            if not ended:
                continue
            fresh = self.store.get(job.id)
            state = read_run_state(Path(job.results_dir) / "status.json")
            status, message = outcome(code, state, fresh.cancel_requested)
            if status == "CANCELED":
                message = f"canceled: {fresh.message or 'by the user'}; run ended: {state.message or 'no status'}"
            self._close(job, status, code, message, state.kpi)

    def handle_cancels(self) -> None:
        if not self.running:
            return
        asked = {j.id for j in self.store.list(status="RUNNING") if j.cancel_requested}
        now = time.time()
        for job_id in asked & set(self.running):
            job = self.running[job_id]
            if job_id not in self.term_sent:
                self.backend(job.backend).terminate(job)
                self.term_sent[job_id] = now
            elif now - self.term_sent[job_id] > self.grace_s:
                self.backend(job.backend).kill(job)

    def follow(self) -> None:
        now = time.time()
        if now - self._last_progress < 2.0:
            return
        self._last_progress = now
        for job in self.running.values():
            state = read_run_state(Path(job.results_dir) / "status.json")
            if state.progress or state.kpi:
                self.store.update(job.id, expect="RUNNING", progress=state.progress, kpi=state.kpi)

    def cascade(self) -> None:
        """PENDING children of parents that ended without COMPLETE (e.g. canceled while PENDING)."""
        for job in self.store.list(status="PENDING"):
            if job.parent_job_id:
                parent = self.store.get(job.parent_job_id)
                if parent.status in ("FAILED", "CANCELED"):
                    reason = f"parent job {parent.id} ({parent.action}) {parent.status}: {parent.message}"
                    self.store.finish(job.id, "CANCELED", None, reason, expect="PENDING")
                    self.store.cancel_descendants(job.id, reason)

    def fail_unplaceable(self) -> None:
        """PENDING jobs asking for more GPUs than this executor has would wait forever: fail them."""
        for job in self.store.list(status="PENDING", backend="local"):
            if job.gpus_needed > len(self.gpus):
                message = (
                    f"needs {job.gpus_needed} GPU(s) but this executor has {len(self.gpus)} "
                    f"({', '.join(self.gpus) or 'none'}); set the spec's num_gpus, or SKILLBANK_GPUS"
                )
                if self.store.finish(job.id, "FAILED", None, message, expect="PENDING"):
                    self.store.cancel_descendants(job.id, f"parent job {job.id} FAILED: {message}")

    def start_jobs(self) -> None:
        while self.slots_used() < self.max_jobs:
            free = self.free_gpus()
            job = self.store.claim(self.id, len(free))
            if job is None:
                break
            self.launch(job, free[: job.gpus_needed])
        while sum(j.backend == "slurm" for j in self.running.values()) < self.max_slurm_jobs:
            job = self.store.claim(self.id, 1 << 30, backend="slurm")  # Slurm places the GPUs
            if job is None:
                break
            self.launch(job, [])

    def launch(self, job: Job, gpus: list[str]) -> None:
        import yaml

        spec = yaml.safe_load(job.spec) or {}
        artifact = None
        automl = job.route == "automl"
        latest = bool(job.options.get("latest"))
        wanted = job.options.get("from_parent")  # the planner's spec key -> artefact kind (None: a bare job)
        try:
            if job.route == "automl_trial":
                pass  # a trial's spec is complete: it takes nothing from its parent, the AutoML job
            elif job.parent_job_id and wanted is None:
                _key, artifact = fill_from_parent(spec, self.store.get(job.parent_job_id), job.action, latest=latest)
            elif job.parent_job_id or job.options.get("from_job"):
                if job.parent_job_id:
                    check_parent_ready(self.store.get(job.parent_job_id))
                source = self.store.get(job.options.get("from_job") or job.parent_job_id)
                artifact = fill_planned(spec, source, wanted or {}, latest=latest)
            spec_path = write_spec(job, spec)
        except (JobError, OSError) as exc:
            self._close(job, "FAILED", None, str(exc), {})
            return
        if gpus:  # the job sees only its GPUs, renumbered from 0
            if isinstance(spec.get(job.action), dict) and "gpu_ids" in spec[job.action]:
                spec[job.action]["gpu_ids"] = list(range(len(gpus)))
            spec_path = write_spec(job, spec)
        argv = automl_argv(spec_path, self.store, job.id) if automl else depth_net_argv(job.action, spec_path)
        if automl:  # the study's own status.json; its trials get the GPUs
            gpus = []
            job.results_dir = str(Path(spec.get("results_dir") or job.job_dir) / "automl")
            self.store.update(job.id, results_dir=job.results_dir)
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=",".join(gpus), PYTHONUNBUFFERED="1")
        if automl and not self.store.url.startswith("sqlite"):
            env["SKILLBANK_DB_URL"] = self.store.url
        env.pop("SKILLBANK_GPUS", None)
        job.spec = yaml.safe_dump(spec, sort_keys=False)
        try:
            started = self.backend(job.backend).start(job, argv, env)
        except Exception as exc:  # noqa: BLE001 - a start that fails (no sbatch, no binary) ends the job
            self._close(job, "FAILED", None, f"could not start the {job.backend} job: {exc}", {})
            return
        job.pid = started.get("pid")
        job.backend_id = started.get("backend_id")
        job.gpus = ",".join(gpus)
        job.command = argv
        self.store.update(
            job.id,
            pid=job.pid,
            backend_id=job.backend_id,
            gpus=job.gpus,
            command=argv,
            artifact=artifact,
            spec=job.spec,
        )
        self.running[job.id] = job

    def step(self) -> None:
        self.reap()
        self.handle_cancels()
        self.follow()
        self.cascade()
        self.fail_unplaceable()
        self.start_jobs()

    def busy(self) -> bool:
        return bool(self.running) or bool(self.store.list(status="PENDING", limit=1))

    def run(self, idle_exit_s: float | None = None) -> None:
        """Loop until idle for ``idle_exit_s`` (forever when None)."""
        self.recover()
        idle_since: float | None = None
        while True:
            self.step()
            if self.busy():
                idle_since = None
            else:
                idle_since = idle_since or time.time()
                if idle_exit_s is not None and time.time() - idle_since >= idle_exit_s:
                    return
            time.sleep(self.poll_s)


# ------------------------------------------------------------------ the detached per-workspace process
def _try_lock(workspace: Path) -> Any | None:
    fh = open(workspace / LOCK_NAME, "a+")  # noqa: SIM115 - held for the executor's lifetime
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def executor_running(workspace: str | Path) -> bool:
    """True while some process holds the workspace's executor lock."""
    fh = _try_lock(Path(workspace))
    if fh is None:
        return True
    fh.close()  # closing releases the lock
    return False


def ensure_executor(
    workspace: str | Path, db_url: str | None = None, max_jobs: int | None = None, idle_exit_s: float = 30.0
) -> bool:
    """Start the workspace's detached executor unless one runs; True when one was started."""
    workspace = Path(workspace).resolve()
    if executor_running(workspace):
        return False
    argv = [
        sys.executable,
        "-m",
        "skillbank.jobs.executor",
        "--workspace",
        str(workspace),
        "--idle-exit",
        str(idle_exit_s),
    ]
    if db_url:
        argv += ["--db", db_url]
    if max_jobs:
        argv += ["--max-jobs", str(max_jobs)]
    log = open(workspace / "executor.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True
        )
    finally:
        log.close()
    return True


def serve(workspace: Path, db_url: str | None, max_jobs: int, idle_exit_s: float | None, grace_s: float) -> int:
    """Hold the lock and run; after releasing it, come back if work arrived meanwhile."""
    store = Store(workspace, db_url)
    while True:
        lock = _try_lock(workspace)
        if lock is None:
            return 0  # another executor serves this workspace
        try:
            Executor(store, max_jobs=max_jobs, grace_s=grace_s).run(idle_exit_s)
        finally:
            lock.close()
        if not store.list(status="PENDING", limit=1):
            return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m skillbank.jobs.executor",
        description="Run a workspace's PENDING jobs (one executor per workspace).",
    )
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--db", default=os.environ.get("SKILLBANK_DB_URL"))
    parser.add_argument("--max-jobs", type=int, default=int(os.environ.get("SKILLBANK_MAX_JOBS", "1")))
    parser.add_argument("--idle-exit", type=float, default=30.0, help="seconds idle before exiting; <0: never")
    parser.add_argument("--grace", type=float, default=float(os.environ.get("SKILLBANK_CANCEL_GRACE_S", "60")))
    args = parser.parse_args(argv)
    idle = None if args.idle_exit < 0 else args.idle_exit
    return serve(Path(args.workspace).resolve(), args.db, args.max_jobs, idle, args.grace)


if __name__ == "__main__":
    sys.exit(main())
