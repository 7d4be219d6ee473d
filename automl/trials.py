"""One trial: its spec, its depth_net train run, the metric read while it trains, pruning and the verdict.

A trial is ``depth_net train`` in ``<results_dir>/automl/trial_<NNN>/`` (its own results folder, its spec
saved there as ``spec.yaml`` before it starts). While it trains, each RUNNING line of its status.json that
carries the metric (e.g. ``val/epe``) is reported to Optuna as the value at that epoch; when the pruner
says so the run is stopped (SIGTERM, then SIGKILL) and the trial is PRUNED with the epochs it ran. Exit 0
with a finite metric is COMPLETE (value = the last epoch's metric); anything else, a NaN loss (exit 4)
included, is FAIL and the study goes on.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from skillbank.automl.launch import TrialLauncher
from skillbank.automl.settings import StudySettings
from skillbank.automl.space import suggest
from skillbank.specs.dotted import set_dotted

#: Seconds between two reads of a running trial's status.json.
POLL_S = 0.5


def trial_folder(settings: StudySettings, number: int) -> Path:
    return Path(settings.automl_dir) / f"trial_{number:03d}"


def trial_spec(settings: StudySettings, values: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The base spec with the trial's values, its own results folder and its epoch budget."""
    spec = json.loads(json.dumps(settings.base_spec))
    spec["results_dir"] = str(folder)
    set_dotted(spec, "train.results_dir", str(folder))
    set_dotted(spec, "train.resume_training_checkpoint_path", None)
    set_dotted(spec, "train.num_epochs", settings.trial_epochs)
    if settings.algorithm in ("hyperband", "asha", "bohb"):
        set_dotted(spec, "train.validation_interval", 1)  # the pruner reads the metric every epoch
    for key, value in values.items():
        set_dotted(spec, key, value)
    return spec


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    from skillbank.atomic import atomic_write

    atomic_write(path, yaml.safe_dump(data, sort_keys=False))


def read_events(folder: Path) -> list[dict[str, Any]]:
    """status.json events so far (a line being replaced is never half-read: writes are atomic)."""
    path = folder / "status.json"
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def metric_of(kpi: dict[str, Any] | None, metric: str) -> float | None:
    """The metric in a kpi mapping; accepts the deploy side's plain names (``epe`` for ``val/epe``)."""
    if not kpi:
        return None
    value = kpi.get(metric, kpi.get(metric.removeprefix("val/")))
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def final_checkpoint(folder: Path) -> Path | None:
    """The newest ``model_epoch_*_step_*.pth`` of a train folder (exact file, not the 'latest' alias)."""
    files = sorted(folder.glob("model_epoch_*_step_*.pth"))
    return files[-1] if files else None


class Heartbeat:
    """Records the trial's heartbeat in the RDB storage every ``interval`` seconds from a thread."""

    def __init__(self, storage: Any, trial_id: int, interval: float) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.storage.record_heartbeat(self.trial_id)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # a transient database error must not kill the trial; the next beat retries
                continue

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Outcome:
    number: int
    state: str
    value: float | None
    epochs: int
    message: str = ""


def run_trial(
    study: Any,
    storage: Any,
    settings: StudySettings,
    trial_id: int,
    launcher: TrialLauncher,
    heartbeat_s: float,
    stop: threading.Event | None = None,
) -> Outcome:
    """Run the claimed trial ``trial_id`` (state RUNNING) to its end and tell Optuna the verdict."""
    import optuna
    from optuna.trial import TrialState

    trial = optuna.Trial(study, trial_id)
    number = trial.number
    with Heartbeat(storage, trial_id, heartbeat_s):
        values = suggest(trial, settings.space)
        folder = trial_folder(settings, number)
        if folder.exists():  # left by a runner that died before this trial was recorded: start clean
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        spec_path = folder / "spec.yaml"
        write_yaml(spec_path, trial_spec(settings, values, folder))
        trial.set_user_attr("folder", str(folder))
        trial.set_user_attr("epochs", 0)
        try:
            run = launcher.launch("train", spec_path, folder, name=f"automl trial {number}")
        except OSError as exc:  # the run could not start: this trial fails, the study goes on
            trial.set_user_attr("error", f"could not start depth_net train: {exc}")
            study.tell(trial, state=TrialState.FAIL)
            return Outcome(number, "FAIL", None, 0, f"could not start depth_net train: {exc}")
        reported: set[int] = set()
        epochs = 0
        last_value: float | None = None
        final_kpi: dict[str, Any] | None = None
        message = ""
        while True:
            code = run.poll()
            for event in read_events(folder):
                status = event.get("status")
                if status == "RUNNING":
                    epoch = int((event.get("categorical") or {}).get("epoch", 0))
                    value = metric_of(event.get("kpi"), settings.metric)
                    if epoch and epoch not in reported:
                        reported.add(epoch)
                        epochs = max(epochs, epoch)
                        if value is not None and math.isfinite(value):
                            trial.report(value, epoch)
                            last_value = value
                        trial.set_user_attr("epochs", epochs)
                elif status == "SUCCESS":
                    final_kpi = event.get("kpi")
                elif status == "FAILURE":
                    message = str(event.get("message", ""))
            # the last epoch is never pruned: nothing is left to save, the trial has completed its budget
            if code is None and reported and epochs < settings.trial_epochs and trial.should_prune():
                run.stop()
                trial.set_user_attr("epochs", epochs)
                study.tell(trial, state=TrialState.PRUNED)
                return Outcome(number, "PRUNED", last_value, epochs, f"pruned after {epochs} epoch(s)")
            if code is None and stop is not None and stop.is_set():
                run.stop()
                trial.set_user_attr("error", "stopped: the runner was interrupted (the trial is queued again)")
                study.tell(trial, state=TrialState.FAIL)
                return Outcome(number, "FAIL", None, epochs, "stopped: the runner is shutting down")
            if code is not None:
                break
            time.sleep(POLL_S)
        value = metric_of(final_kpi, settings.metric) if last_value is None else last_value
        if code == 0 and value is not None and math.isfinite(value):
            study.tell(trial, value)
            return Outcome(number, "COMPLETE", value, epochs)
        if not message:
            message = (
                f"exit {code}" if code else f"no {settings.metric} in the trial's status.json (is there a val_dataset?)"
            )
        trial.set_user_attr("error", message)
        study.tell(trial, state=TrialState.FAIL)
        return Outcome(number, "FAIL", None, epochs, message)
