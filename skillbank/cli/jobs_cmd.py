"""``skillbank run`` and ``skillbank jobs list|show|logs|cancel``: requests become jobs in a workspace.

    skillbank run "<request>" [--workspace W] [--wait] [--json] [--parent ID] [--overrides FILE.yaml]
    skillbank jobs list|show ID|logs ID [--tail N]|cancel ID [--workspace W] [--json]

``--json`` prints one object ``{"jobs": [{"id", "action", "status", "parent_job_id", "results_dir",
"kpi"}, ...]}``. ``run --wait`` follows the jobs to their end and exits 1 unless every one COMPLETEd;
without ``--wait`` it returns at once and the workspace's detached executor runs the jobs (docs/jobs.md).
Errors are one line on stderr with exit 2 (a request that cannot be planned, an unknown job).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import typer

WORKSPACE_HELP = "Jobs workspace (job store and job folders); default $SKILLBANK_WORKSPACE or ./skillbank_jobs."
jobs_app = typer.Typer(
    help="List, show, follow and cancel jobs of a workspace.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


def _client(workspace: str | None) -> Any:
    try:
        from skillbank.sdk import Client

        return Client(workspace)
    except ModuleNotFoundError as exc:
        typer.echo(f"skillbank: jobs need SQLAlchemy ({exc}); pip install 'skillbank[jobs]'", err=True)
        raise typer.Exit(6) from None


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"skillbank: {message}", err=True)
    return typer.Exit(code)


def _fmt_kpi(kpi: dict[str, Any] | None, limit: int = 4) -> str:
    items = list((kpi or {}).items())[:limit]
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in items)


def _print_jobs(jobs: list[Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"jobs": [j.summary() for j in jobs]}))
        return
    for j in jobs:
        parent = f" <- {j.parent_job_id}" if j.parent_job_id else ""
        typer.echo(f"{j.id}  {j.action:<14} {j.status:<9}{parent}")
        typer.echo(f"        results: {j.results_dir}")
        if j.kpi:
            typer.echo(f"        kpi:     {_fmt_kpi(j.kpi, 8)}")
        if j.status in ("FAILED", "CANCELED") and j.message:
            typer.echo(f"        reason:  {j.message}")


def _artefacts(job: Any) -> list[str]:
    folder = Path(job.results_dir)
    if not folder.is_dir():
        return []
    patterns = {
        "train": ["model_epoch_*_step_*.pth"],
        "export": ["*.onnx"],
        "gen_trt_engine": ["*.engine"],
        "inference": ["*.png"],
        "evaluate": [],
        "convert": ["*.txt"],
    }.get(job.action, [])
    found = [str(p) for pat in patterns for p in sorted(folder.glob(pat))]
    return found[:3] + ([f"... ({len(found) - 3} more)"] if len(found) > 3 else []) + [str(folder / "status.json")]


def run_cmd(
    request: str = typer.Argument(..., help="The request in words or as a JSON tool call."),
    workspace: str = typer.Option(None, "--workspace", "-w", help=WORKSPACE_HELP),
    wait: bool = typer.Option(False, "--wait", help="Follow the jobs to their end; exit 1 unless all COMPLETE."),
    as_json: bool = typer.Option(False, "--json", help='Print {"jobs": [...]} as one JSON object.'),
    parent: str = typer.Option(None, "--parent", help="Parent job id whose artefact the first job takes."),
    overrides: Path = typer.Option(None, "--overrides", help="YAML of spec keys applied to every job."),
    timeout: float = typer.Option(None, "--timeout", help="With --wait: give up after this many seconds."),
) -> None:
    """Plan a request and submit its jobs ("..., then ..." makes a chain linked by parent ids)."""
    extra = None
    if overrides is not None:
        from skillbank.skill_files import load_yaml_mapping

        try:
            extra = load_yaml_mapping(overrides, str(overrides))
        except (OSError, ValueError) as exc:
            raise _fail(f"--overrides: {exc}") from None
    client = _client(workspace)
    from skillbank.jobs.store import JobError

    try:
        jobs = client.submit(request, parent_job_id=parent, overrides=extra)
    except JobError as exc:
        raise _fail(str(exc)) from None
    if not wait:
        _print_jobs(jobs, as_json)
        if not as_json:
            typer.echo(
                f"submitted {len(jobs)} job(s) to {client.workspace}; follow with: skillbank jobs list "
                f"--workspace {client.workspace}"
            )
        return
    if not as_json:
        typer.echo(f"submitted: {', '.join(f'{j.id} ({j.action})' for j in jobs)}; waiting ...")
    try:
        done = _follow(client, [j.id for j in jobs], timeout, quiet=as_json)
    except TimeoutError as exc:
        raise _fail(str(exc), 1) from None
    except KeyboardInterrupt:
        typer.echo("stopped waiting; the jobs go on (skillbank jobs cancel ID to stop them)", err=True)
        raise typer.Exit(130) from None
    if as_json:
        _print_jobs(done, True)
    else:
        typer.echo("")
        _print_jobs(done, False)
        for j in done:
            for path in _artefacts(j):
                typer.echo(f"  {j.id} {j.action}: {path}")
    raise typer.Exit(0 if all(j.status == "COMPLETE" for j in done) else 1)


def _follow(client: Any, ids: list[str], timeout: float | None, quiet: bool) -> list[Any]:
    """Wait for the jobs, printing each status change (unless quiet)."""
    from skillbank.jobs.store import FINAL

    seen: dict[str, str] = {}
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        jobs = [client.status(i) for i in ids]
        for j in jobs:
            line = j.status + (
                f" epoch {j.progress.get('epoch')}/{j.progress.get('max_epoch')} eta {j.progress.get('eta')}"
                if j.status == "RUNNING" and j.progress
                else ""
            )
            if seen.get(j.id) != line and not quiet:
                typer.echo(f"  {j.id} {j.action}: {line}", err=True)
            seen[j.id] = line
        if all(j.status in FINAL for j in jobs):
            return jobs
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"--timeout {timeout} s passed; jobs go on in {client.workspace}")
        client.kick()  # restarts the executor if it died
        time.sleep(1.0)


@jobs_app.command("list")
def list_cmd(
    workspace: str = typer.Option(None, "--workspace", "-w", help=WORKSPACE_HELP),
    status: str = typer.Option(None, "--status", help="Only jobs in this status."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Jobs of the workspace, oldest first."""
    from skillbank.jobs.store import JobError

    client = _client(workspace)
    try:
        jobs = client.jobs(status=status.upper() if status else None)
    except JobError as exc:
        raise _fail(str(exc)) from None
    _print_jobs(jobs, as_json)


def _get(client: Any, job_id: str) -> Any:
    from skillbank.jobs.store import JobError

    try:
        return client.status(job_id)
    except JobError as exc:
        raise _fail(str(exc)) from None


@jobs_app.command("show")
def show_cmd(
    job_id: str = typer.Argument(...),
    workspace: str = typer.Option(None, "--workspace", "-w", help=WORKSPACE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Every stored field as JSON."),
) -> None:
    """One job: status, exit code, kpi, progress, parent, folders, command, reason."""
    job = _get(_client(workspace), job_id)
    if as_json:
        typer.echo(json.dumps(job.to_dict(), default=str))
        return
    fields = [
        "id",
        "skill",
        "action",
        "route",
        "automl_policy",
        "status",
        "exit_code",
        "parent_job_id",
        "results_dir",
        "job_dir",
        "message",
        "progress",
        "kpi",
        "command",
        "artifact",
        "gpus",
        "backend",
        "backend_id",
    ]
    for name in fields:
        value = getattr(job, name)
        if name == "command":
            value = " ".join(value)
        if value not in (None, "", {}, []):
            typer.echo(f"{name + ':':15s}{value}")
    for name in ("created_at", "started_at", "ended_at"):
        value = getattr(job, name)
        if value:
            typer.echo(f"{name + ':':15s}{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(value))}")


@jobs_app.command("logs")
def logs_cmd(
    job_id: str = typer.Argument(...),
    workspace: str = typer.Option(None, "--workspace", "-w", help=WORKSPACE_HELP),
    tail: int = typer.Option(None, "--tail", "-n", help="Only the last N lines."),
) -> None:
    """The job's output (depth_net's stdout and stderr)."""
    client = _client(workspace)
    _get(client, job_id)
    sys.stdout.write(client.logs(job_id, tail=tail).rstrip("\n") + "\n")


@jobs_app.command("cancel")
def cancel_cmd(
    job_id: str = typer.Argument(...),
    workspace: str = typer.Option(None, "--workspace", "-w", help=WORKSPACE_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Cancel a job (PENDING: at once; RUNNING: SIGTERM, the train action writes an interrupt checkpoint)."""
    client = _client(workspace)
    _get(client, job_id)
    job = client.cancel(job_id)
    _print_jobs([job], as_json)
    if not as_json and job.status == "RUNNING":
        typer.echo(
            f"cancel asked: the executor stops {job.id} (SIGTERM, SIGKILL after "
            f"{os.environ.get('SKILLBANK_CANCEL_GRACE_S', '60')} s)"
        )


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.add_typer(jobs_app, name="jobs")
