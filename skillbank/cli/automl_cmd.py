"""``skillbank automl run|status|worker``: hyperparameter search over depth_net train runs (Optuna).

- ``run -e spec.yaml [dotted.key=value ...]``: create or resume the study of the spec (settings in its
  ``automl`` section), evaluate the starting weights, run the trials, write ``<results_dir>/automl/``.
  Running the same command again resumes: finished trials are kept, none is run twice.
- ``status DIR [--json]``: trials, states, best so far of the study in DIR (results_dir or its automl/).
- ``worker --storage URL [--study NAME]``: join a study in a shared database (e.g. PostgreSQL) from
  another machine and run its trials.

Optuna and torch are imported inside the commands only, so ``skillbank list`` stays light.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(help="AutoML: Optuna hyperparameter search over depth_net train runs.", no_args_is_help=True)

STORAGE_HELP = "SQLAlchemy URL of the Optuna storage (default: sqlite <results_dir>/automl/study.db)."
JOBS_HELP = "Run each trial as a job of this job-store workspace (its executor runs them); default: subprocesses."


def _launcher(jobs: str | None, jobs_db: str | None, parent_job: str | None, skill: str) -> Any:
    if not jobs and not jobs_db:
        return None
    import os

    from skillbank.automl.launch import JobsLauncher

    db = jobs_db or os.environ.get("SKILLBANK_DB_URL")
    return JobsLauncher(jobs or os.environ.get("SKILLBANK_WORKSPACE") or "skillbank_jobs", db, parent_job, skill)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _sigterm_to_interrupt() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


@app.command()
def run(
    overrides: list[str] = typer.Argument(None, help="Spec overrides as dotted.key=value (YAML-typed)."),
    experiment_spec: str = typer.Option(..., "-e", "--experiment_spec", "--experiment-spec", help="Spec YAML file."),
    storage: str = typer.Option(None, "--storage", help=STORAGE_HELP),
    study: str = typer.Option("automl", "--study", help="Study name inside the storage."),
    heartbeat: int = typer.Option(30, "--heartbeat", help="Seconds between a running trial's heartbeats."),
    grace: int = typer.Option(120, "--grace", help="Seconds without a heartbeat before a trial counts as stale."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON at the end."),
    jobs: str = typer.Option(None, "--jobs", help=JOBS_HELP),
    jobs_db: str = typer.Option(None, "--jobs-db", help="SQLAlchemy URL of the job store (with --jobs)."),
    parent_job: str = typer.Option(None, "--parent-job", help="The AutoML job's id: trials become its children."),
) -> None:
    """Run (or resume) the AutoML study of a spec."""
    from skillbank.specs import SpecError, load_spec

    try:
        from skillbank.automl.runner import run as run_study
        from skillbank.automl.settings import resolve

        spec = load_spec(experiment_spec, list(overrides or []))
        settings = resolve(spec)
    except SpecError as exc:
        _fail(f"skillbank automl run: {exc}")
    except ModuleNotFoundError as exc:
        _fail(f"skillbank automl run needs the '{exc.name}' package: pip install 'skillbank[automl,gpu]'", 6)
    _sigterm_to_interrupt()
    try:
        summary = run_study(
            settings,
            url=storage,
            study_name=study,
            heartbeat_s=heartbeat,
            grace_s=grace,
            launcher=_launcher(jobs, jobs_db, parent_job, settings.skill),
            echo=lambda s: typer.echo(s, err=as_json),
        )
    except SpecError as exc:
        _fail(f"skillbank automl run: {exc}")
    except KeyboardInterrupt:
        _fail("skillbank automl run: interrupted; run the same command again to resume", 130)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    if not summary.get("best"):
        _fail("skillbank automl run: no trial completed (see the trials' status.json)", 1)


@app.command()
def worker(
    storage: str = typer.Option(..., "--storage", help="SQLAlchemy URL of the study's storage."),
    study: str = typer.Option("automl", "--study", help="Study name inside the storage."),
    results_dir: str = typer.Option(
        None,
        "--results-dir",
        help="Where this worker writes trial folders "
        "(default: the study's own <results_dir>/automl, e.g. on a shared disk).",
    ),
    heartbeat: int = typer.Option(30, "--heartbeat", help="Seconds between a running trial's heartbeats."),
    grace: int = typer.Option(120, "--grace", help="Seconds without a heartbeat before a trial counts as stale."),
    jobs: str = typer.Option(None, "--jobs", help=JOBS_HELP),
    jobs_db: str = typer.Option(None, "--jobs-db", help="SQLAlchemy URL of the job store (with --jobs)."),
) -> None:
    """Join a study started by `skillbank automl run` and run its trials until none is left."""
    from skillbank.specs import SpecError

    try:
        from skillbank.automl.runner import run_worker
    except ModuleNotFoundError as exc:
        _fail(f"skillbank automl worker needs the '{exc.name}' package: pip install 'skillbank[automl,gpu]'", 6)
    _sigterm_to_interrupt()
    try:
        run_worker(
            storage,
            study,
            heartbeat_s=heartbeat,
            grace_s=grace,
            automl_dir=results_dir,
            echo=typer.echo,
            launcher=_launcher(jobs, jobs_db, None, ""),
        )
    except SpecError as exc:
        _fail(f"skillbank automl worker: {exc}")
    except KeyboardInterrupt:
        _fail("skillbank automl worker: interrupted; its running trials are queued again", 130)


@app.command()
def status(
    folder: str = typer.Argument(..., help="The spec's results_dir, or its automl/ folder."),
    storage: str = typer.Option(None, "--storage", help=STORAGE_HELP),
    study: str = typer.Option("automl", "--study", help="Study name inside the storage."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Trials, their states and the best so far."""
    from skillbank.specs import SpecError

    try:
        from skillbank.automl.status import study_status
    except ModuleNotFoundError as exc:
        _fail(f"skillbank automl status needs the '{exc.name}' package: pip install 'skillbank[automl]'", 6)
    try:
        summary = study_status(Path(folder), storage, study)
    except SpecError as exc:
        _fail(f"skillbank automl status: {exc}")
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    from skillbank.automl.status import status_text

    typer.echo(status_text(summary))
