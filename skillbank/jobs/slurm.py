"""The Slurm backend: a job becomes one ``sbatch`` job through submitit.

What is submitted: :func:`run_depth_net` (pickled by submitit) which runs ``depth_net <action> -e
<job_dir>/spec.yaml`` in the job's folder, appends its output to ``<job_dir>/job.log`` and returns its
exit code, so the job's status still comes from the exit code and status.json. The sbatch script asks
for ``--nodes`` = ``train.num_nodes`` (1 for other actions), ``--gpus-per-node`` = the GPUs the spec asks
for (``<action>.num_gpus``; none for a CPU spec), one task per GPU (``--ntasks-per-node``, what
Lightning's Slurm support expects; 1 on the CPU), ``--job-name skillbank-<id>``, and ``--partition`` /
``--time`` from ``SKILLBANK_SLURM_PARTITION`` / ``SKILLBANK_SLURM_TIME_MIN`` (default 240) when set.
submitit's files (script, pickles, Slurm logs) go to ``<job_dir>/slurm/``.

Polling: submitit's result pickle, else ``sacct`` (submitit's watcher). Cancel: ``scancel``; Slurm sends
SIGTERM to every process of the job (depth_net writes its interrupt checkpoint), then SIGKILL after its
``KillWait``. The executor reconnects to a submitted job from its stored Slurm id after a restart.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from skillbank.jobs.store import Job


def run_depth_net(argv: list[str], cwd: str, log_path: str) -> int:
    """Run on the Slurm node: ``argv`` in ``cwd`` with output appended to ``log_path``; the exit code."""
    with open(log_path, "ab") as log:
        return subprocess.run(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False
        ).returncode


def sbatch_parameters(job: Job, spec: dict[str, Any]) -> dict[str, Any]:
    """submitit SlurmExecutor parameters for ``job`` (see the module docstring)."""
    nodes = int((spec.get("train") or {}).get("num_nodes") or 1) if job.action == "train" else 1
    gpus = job.gpus_needed
    params: dict[str, Any] = {
        "job_name": f"skillbank-{job.id}",
        "nodes": nodes,
        "ntasks_per_node": max(1, gpus),
        "time": int(os.environ.get("SKILLBANK_SLURM_TIME_MIN", "240")),
    }
    if gpus:
        params["gpus_per_node"] = gpus
    if os.environ.get("SKILLBANK_SLURM_PARTITION"):
        params["partition"] = os.environ["SKILLBANK_SLURM_PARTITION"]
    return params


class SlurmBackend:
    name = "slurm"

    def __init__(self) -> None:
        import submitit

        self._submitit = submitit
        self._jobs: dict[str, Any] = {}

    def _folder(self, job: Job) -> Path:
        return Path(job.job_dir) / "slurm"

    def start(self, job: Job, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
        import yaml

        executor = self._submitit.SlurmExecutor(folder=str(self._folder(job) / "%j"))
        executor.update_parameters(**sbatch_parameters(job, yaml.safe_load(job.spec) or {}))
        handle = executor.submit(run_depth_net, argv, job.job_dir, str(Path(job.job_dir) / "job.log"))
        self._jobs[job.id] = handle
        return {"backend_id": str(handle.job_id)}

    def _handle(self, job: Job) -> Any:
        if job.id not in self._jobs:
            self._jobs[job.id] = self._submitit.SlurmJob(
                folder=str(self._folder(job) / "%j"), job_id=str(job.backend_id)
            )
        return self._jobs[job.id]

    def adopt(self, job: Job) -> bool:
        return bool(job.backend_id)

    def poll(self, job: Job) -> tuple[bool, int | None]:
        handle = self._handle(job)
        if not handle.done():
            return False, None
        self._jobs.pop(job.id, None)
        if handle.paths.result_pickle.exists():
            try:
                return True, int(handle.result())
            except Exception:  # noqa: BLE001 - the pickle holds an error: the run did not return a code
                return True, None
        return True, None  # ended without a result (cancelled, killed, node failure): status.json decides

    def terminate(self, job: Job) -> None:
        self._handle(job).cancel(check=False)

    def kill(self, job: Job) -> None:
        subprocess.run(["scancel", "--signal=KILL", "--full", str(job.backend_id)], check=False, capture_output=True)

    def forget(self, job: Job) -> None:
        self._jobs.pop(job.id, None)
