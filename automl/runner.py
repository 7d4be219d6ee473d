"""Run a study: baseline, then trials ``automl_max_concurrent`` at a time until no slot is left.

:func:`run` (``skillbank automl run``) creates or resumes the study of a spec; :func:`work`
(``skillbank automl worker``) joins an existing study from its storage. Both use the same loop: fail
stale trials (their runner stopped sending heartbeats; a retry is enqueued), take a WAITING trial, run
it; when nothing is waiting but trials are still running elsewhere, wait (one of them may go stale and
come back as a retry); stop when nothing is waiting or running. Progress lines say trial n of N, the best
value so far and an ETA. Ctrl-C / SIGTERM stops the running trials and puts each back in the queue
as a retry, so running the same command again finishes the study.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from skillbank.automl.baseline import run_baseline
from skillbank.automl.launch import SubprocessLauncher, TrialLauncher, trial_env
from skillbank.automl.settings import StudySettings
from skillbank.automl.storage import (
    BASELINE_ATTR,
    DEFAULT_STUDY,
    GRACE_S,
    HEARTBEAT_S,
    MAX_RETRY,
    claim_trial,
    create_or_load,
    default_url,
    load_for_worker,
    open_storage,
)
from skillbank.automl.summary import write_summary
from skillbank.automl.trials import Outcome, run_trial

Echo = Callable[[str], None]


def status_log(settings: StudySettings) -> Any:
    """``<results_dir>/automl/status.json``: the study's own event log (STARTED, a RUNNING line per finished
    trial with the best value so far, SUCCESS or FAILURE), in depth_net's format, for the job store."""
    from skillbank.runtime.status import StatusLogger

    return StatusLogger(Path(settings.automl_dir) / "status.json", enabled=True)


@dataclass
class Progress:
    """Progress lines: trial n of N, best so far, ETA (from the mean wall time per finished trial)."""

    study: Any
    settings: StudySettings
    echo: Echo
    status: Any = None
    start: float = field(default_factory=time.monotonic)
    finished_here: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def counts(self) -> tuple[int, int, int]:
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False)
        done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) for t in trials)
        left = sum(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials)
        return done, left, len(trials)

    def best_value(self) -> float | None:
        try:
            return float(self.study.best_value)
        except ValueError:
            return None

    def best_text(self) -> str:
        try:
            best = self.study.best_trial
        except ValueError:
            return "best: none yet"
        return f"best {self.settings.metric} {best.value:.5g} (trial {best.number})"

    def started(self, number: int) -> None:
        done, left, _ = self.counts()
        self.echo(f"[automl] trial {number} started ({done} of {done + left} finished)")

    def finished(self, outcome: Outcome) -> None:
        with self.lock:
            self.finished_here += 1
            done, left, _ = self.counts()
            per_trial = (time.monotonic() - self.start) / self.finished_here
            eta = str(timedelta(seconds=round(per_trial * left)))
            value = f" {self.settings.metric} {outcome.value:.5g}" if outcome.value is not None else ""
            why = f" ({outcome.message})" if outcome.message else ""
            line = (
                f"trial {outcome.number} {outcome.state}{value} after {outcome.epochs} epoch(s){why}; "
                f"{done} of {done + left} finished; {self.best_text()}; ETA {eta}"
            )
            self.echo(f"[automl] {line}")
            if self.status is not None:
                best = self.best_value()
                self.status.write(
                    "RUNNING",
                    line,
                    kpi={self.settings.metric: best} if best is not None else None,
                    categorical={
                        "trial": outcome.number,
                        "state": outcome.state,
                        "trials_finished": done,
                        "max_trials": done + left,
                        "eta": eta,
                    },
                )


def _retry(study: Any, number: int) -> None:
    """Queue a copy of an interrupted trial (same parameters), as a stale trial is retried."""
    import optuna

    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(study, frozen)


def work(
    study: Any,
    storage: Any,
    settings: StudySettings,
    launcher: TrialLauncher,
    *,
    heartbeat_s: float,
    echo: Echo,
    stop: threading.Event | None = None,
    status: Any = None,
) -> None:
    """Run trials of ``study`` until no slot is left (``max_concurrent`` threads, one trial each)."""
    import optuna
    from optuna.trial import TrialState

    stop = stop or threading.Event()
    progress = Progress(study, settings, echo, status)
    summary_lock = threading.Lock()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            while not stop.is_set():
                optuna.storages.fail_stale_trials(study)
                trial_id = claim_trial(study, storage)
                if trial_id is None:
                    if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                        stop.wait(min(heartbeat_s, 2.0))
                        continue
                    return
                number = storage.get_trial(trial_id).number
                progress.started(number)
                outcome = run_trial(study, storage, settings, trial_id, launcher, heartbeat_s, stop)
                if stop.is_set() and outcome.message.startswith("stopped"):
                    _retry(study, number)
                progress.finished(outcome)
                with summary_lock:
                    write_summary(study, settings)
        except BaseException as exc:  # surface a database or launcher error from the thread
            errors.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=loop, name=f"automl-{i}", daemon=True) for i in range(max(1, settings.max_concurrent))
    ]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    except KeyboardInterrupt:
        echo("[automl] interrupted: stopping the running trials (they are queued again for the next run)")
        stop.set()
        for t in threads:
            t.join()
        raise
    if errors:
        raise errors[0]


def run(
    settings: StudySettings,
    *,
    url: str | None = None,
    study_name: str = DEFAULT_STUDY,
    launcher: TrialLauncher | None = None,
    heartbeat_s: int = HEARTBEAT_S,
    grace_s: int = GRACE_S,
    echo: Echo = print,
) -> dict[str, Any]:
    """Create or resume the study of ``settings``, run the baseline once, then the trials; the summary."""
    url = url or default_url(settings.automl_dir)
    Path(settings.automl_dir).mkdir(parents=True, exist_ok=True)
    storage = open_storage(url, heartbeat_s, grace_s)
    study, created = create_or_load(storage, study_name, settings)
    launcher = launcher or SubprocessLauncher(env=trial_env(settings.automl_dir))
    done = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))
    echo(
        f"[automl] study {study_name!r} ({'new' if created else f'resumed, {done} trial(s) finished'}): "
        f"{settings.algorithm}, {settings.metric} {settings.direction}, {settings.max_trials} trials, "
        f"space: {'; '.join(p.describe() for p in settings.space)}; storage {_safe(url)}"
    )
    status = status_log(settings)
    status.write("STARTED", f"AutoML study {study_name} ({settings.algorithm}, {settings.max_trials} trials)")
    try:
        if study.user_attrs.get(BASELINE_ATTR) is None:
            echo("[automl] baseline: evaluating the starting weights")
            baseline = run_baseline(settings, launcher)
            study.set_user_attr(BASELINE_ATTR, baseline)
            shown = baseline.get("value")
            echo(
                f"[automl] baseline {settings.metric}: "
                f"{shown if shown is not None else baseline.get('skipped') or baseline.get('failed')}"
            )
        work(study, storage, settings, launcher, heartbeat_s=heartbeat_s, echo=echo, status=status)
        summary = write_summary(study, settings, final=True)
    except KeyboardInterrupt:
        status.write("FAILURE", "Interrupted: AutoML stopped by the user or a signal; run it again to resume")
        raise
    except Exception as exc:
        status.write("FAILURE", f"Execution error: {type(exc).__name__}: {exc}")
        raise
    text = _result_text(summary)
    best = summary.get("best")
    if best:
        status.write(
            "SUCCESS",
            f"AutoML done: {text}",
            kpi={settings.metric: best["value"]},
            categorical={
                "best_trial": best["trial"],
                "best_spec": best.get("spec"),
                "checkpoint": best.get("checkpoint"),
            },
        )
    else:
        status.write("FAILURE", f"Execution error: AutoML finished without a completed trial ({text})")
    echo(f"[automl] done: {text}; {Path(settings.automl_dir) / 'summary.json'}")
    return summary


def run_worker(
    url: str,
    study_name: str = DEFAULT_STUDY,
    *,
    launcher: TrialLauncher | None = None,
    heartbeat_s: int = HEARTBEAT_S,
    grace_s: int = GRACE_S,
    automl_dir: str | None = None,
    echo: Echo = print,
) -> dict[str, Any]:
    """Join an existing study and run its trials until none is left."""
    storage = open_storage(url, heartbeat_s, grace_s)
    study, settings = load_for_worker(storage, study_name)
    if automl_dir:
        settings.automl_dir = str(Path(automl_dir).resolve())
    echo(f"[automl] worker on study {study_name!r} ({_safe(url)}), trials in {settings.automl_dir}")
    launcher = launcher or SubprocessLauncher(env=trial_env(settings.automl_dir))
    work(study, storage, settings, launcher, heartbeat_s=heartbeat_s, echo=echo)
    return write_summary(study, settings, final=True)


def _result_text(summary: dict[str, Any]) -> str:
    p = summary["progress"]
    best = summary.get("best")
    text = f"{p['complete']} complete, {p['pruned']} pruned, {p['fail']} failed"
    if best:
        text += f"; best {summary['metric']} {best['value']:.5g} (trial {best['trial']})"
    return text


def _safe(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]
