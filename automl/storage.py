"""The study's Optuna RDB storage: SQLite in the results folder by default, or any SQLAlchemy URL.

- Heartbeats: each running trial records one every ``heartbeat_s`` seconds; a RUNNING trial silent for
  ``grace_s`` (its runner was killed, its machine died) is failed by the next runner or worker that looks,
  and :class:`optuna.storages.RetryHeartbeatStaleTrialCallback` enqueues a copy with the same parameters.
- The trial budget: when the study is created it gets exactly ``max_trials`` WAITING trials (slots).
  Runners and workers only ever take a WAITING trial (an atomic RUNNING transition in the database),
  never create one, so several workers on one study run exactly ``max_trials`` trials and none twice;
  retries of stale trials come on top and are marked as retries. Resuming adds slots only when the budget
  grew, so completed trials are never run again.
- The study keeps its :class:`~skillbank.automl.settings.StudySettings` (base spec, space, algorithm) in a
  user attribute, so ``skillbank automl worker --storage URL --study NAME`` needs nothing else.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from skillbank.automl.algorithms import make_pruner, make_sampler
from skillbank.automl.settings import StudySettings
from skillbank.specs import SpecError

SETTINGS_ATTR = "skillbank_settings"
SLOTS_ATTR = "skillbank_slots"
BASELINE_ATTR = "skillbank_baseline"
DEFAULT_STUDY = "automl"
DB_FILE = "study.db"
HEARTBEAT_S = 30
GRACE_S = 120
MAX_RETRY = 3


def default_url(automl_dir: str | Path) -> str:
    return f"sqlite:///{Path(automl_dir).resolve() / DB_FILE}"


def open_storage(url: str, heartbeat_s: int = HEARTBEAT_S, grace_s: int = GRACE_S) -> Any:
    import optuna

    _quiet()
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 120}}  # several processes write one file
    return optuna.storages.RDBStorage(
        url,
        engine_kwargs=engine_kwargs,
        heartbeat_interval=int(heartbeat_s),
        grace_period=int(grace_s),
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
    )


def _quiet() -> None:
    """Optuna's INFO lines and its 'experimental' warnings (heartbeats, retries) stay out of our output."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def create_or_load(storage: Any, name: str, settings: StudySettings) -> tuple[Any, bool]:
    """(study, created). A new study gets its settings and ``max_trials`` WAITING slots; an existing one
    must have the same algorithm, metric, direction and space, and gains slots if max_trials grew."""
    import optuna

    _quiet()
    sampler = make_sampler(settings.algorithm, settings.space, settings.seed)
    pruner = make_pruner(settings.algorithm, settings.max_epochs, settings.reduction_factor)
    try:
        study = optuna.create_study(
            study_name=name, storage=storage, direction=settings.direction, sampler=sampler, pruner=pruner
        )
        created = True
        study.set_user_attr(SETTINGS_ATTR, settings.to_json())
    except optuna.exceptions.DuplicatedStudyError:
        created = False
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        stored = StudySettings.from_json(wait_for_attr(study, SETTINGS_ATTR))
        if stored.search_signature() != settings.search_signature():
            raise SpecError(
                [
                    f"automl: study {name!r} in this storage searches {stored.search_signature()}; this "
                    "spec asks for a different search (use another results_dir or --study)"
                ]
            ) from None
    slots = int(study.user_attrs.get(SLOTS_ATTR, 0)) if created else int(wait_for_attr(study, SLOTS_ATTR))
    for _ in range(settings.max_trials - slots):
        study.enqueue_trial({})
    if settings.max_trials > slots:
        study.set_user_attr(SLOTS_ATTR, settings.max_trials)
    return study, created


def wait_for_attr(study: Any, key: str, timeout: float = 120.0) -> Any:
    """A study user attribute another process is about to write (the creator of a new study)."""
    start = time.monotonic()
    while True:
        value = study.user_attrs.get(key)
        if value is not None:
            return value
        if time.monotonic() - start > timeout:
            raise SpecError([f"automl: study {study.study_name!r} has no {key} (not made by skillbank automl run?)"])
        time.sleep(0.5)


def load_for_worker(storage: Any, name: str) -> tuple[Any, StudySettings]:
    """An existing study and its stored settings (for ``skillbank automl worker``)."""
    import optuna

    _quiet()
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise SpecError([f"--study: no study {name!r} in this storage (start it with skillbank automl run)"]) from None
    settings = StudySettings.from_json(wait_for_attr(study, SETTINGS_ATTR))
    wait_for_attr(study, SLOTS_ATTR)
    sampler = make_sampler(settings.algorithm, settings.space, settings.seed)
    pruner = make_pruner(settings.algorithm, settings.max_epochs, settings.reduction_factor)
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    return study, settings


_CLAIM_LOCK = threading.Lock()


def claim_trial(study: Any, storage: Any) -> int | None:
    """Take one WAITING trial (atomically set RUNNING); its trial id, or None when none is left.

    The runner's threads claim one at a time: on SQLite, Optuna's read-then-write of the trial's state is
    not locked (SQLite has no SELECT ... FOR UPDATE), so two threads of one process could both read
    WAITING and both start the same trial. Across processes the storage's transaction decides."""
    import optuna
    from optuna.trial import TrialState

    with _CLAIM_LOCK:
        study_id = storage.get_study_id_from_name(study.study_name)
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
            try:
                if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                    return trial_id
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
    return None


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=str) + "\n"
