"""Parent jobs: what a child job takes from its parent, resolved from the store, never guessed.

A child names its parent by ``parent_job_id``. When the child starts, the parent must be COMPLETE; its
results folder is searched for the artefact kind the child's action consumes:

=====================  ======================  ==========================================================
parent action          child action            artefact (spec key it fills)
=====================  ======================  ==========================================================
train                  evaluate / inference /  the newest exact ``model_epoch_EEE_step_SSSSS.pth``
                       export                  (``dn_model_latest.pth`` only when "latest" was asked);
                                               ``<action>.checkpoint``
export                 gen_trt_engine          the ``.onnx`` file; ``gen_trt_engine.onnx_file``
gen_trt_engine         evaluate / inference    the ``.engine`` file; ``<action>.trt_engine``
=====================  ======================  ==========================================================

A job planned by :mod:`.chain` carries the planner's ``from_parent`` (spec key -> checkpoint | onnx |
engine) in ``options``; :func:`fill_planned` fills exactly those keys. The table above is the default for a
job stored without it.

A parent that FAILED, was CANCELED or is still PENDING/RUNNING, or holds nothing suitable, is a
:class:`ParentError` with one line that says which and what was looked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skillbank.checkpoint_names import LATEST_NAME, newest_checkpoint
from skillbank.jobs.store import Job, JobError

#: (parent action, child action) -> (artefact kind, spec key of the child it fills)
CONSUMES: dict[tuple[str, str], tuple[str, str]] = {
    ("train", "evaluate"): ("checkpoint", "evaluate.checkpoint"),
    ("train", "inference"): ("checkpoint", "inference.checkpoint"),
    ("train", "export"): ("checkpoint", "export.checkpoint"),
    ("export", "gen_trt_engine"): ("onnx", "gen_trt_engine.onnx_file"),
    ("gen_trt_engine", "evaluate"): ("engine", "evaluate.trt_engine"),
    ("gen_trt_engine", "inference"): ("engine", "inference.trt_engine"),
}


class ParentError(JobError):
    """The parent job cannot provide the child's input."""


def artefact_key(parent_action: str, child_action: str) -> str:
    """The child's spec key a parent of ``parent_action`` fills (ParentError when none can)."""
    try:
        return CONSUMES[(parent_action, child_action)][1]
    except KeyError:
        takes = ", ".join(f"{p} -> {c}" for p, c in CONSUMES)
        raise ParentError(
            f"a {child_action} job cannot take its input from a {parent_action} job; parent/child pairs: {takes}"
        ) from None


def check_parent_ready(parent: Job) -> None:
    """ParentError unless ``parent`` is COMPLETE."""
    if parent.status == "COMPLETE":
        return
    if parent.status in ("PENDING", "RUNNING"):
        raise ParentError(f"parent job {parent.id} ({parent.action}) is still {parent.status}; wait for it to COMPLETE")
    detail = f": {parent.message}" if parent.message else ""
    raise ParentError(f"parent job {parent.id} ({parent.action}) {parent.status}{detail}")


def _single(folder: Path, suffix: str, parent: Job) -> Path:
    files = sorted(folder.glob(f"*{suffix}")) if folder.is_dir() else []
    if len(files) == 1:
        return files[0]
    if not files:
        raise ParentError(f"parent job {parent.id} ({parent.action}) holds no {suffix} file in {folder}")
    names = ", ".join(p.name for p in files)
    raise ParentError(f"parent job {parent.id} holds several {suffix} files in {folder} ({names}); name one")


def resolve_parent_artefact(parent: Job, child_action: str, latest: bool = False) -> tuple[str, Path]:
    """(spec key, file) the child of ``parent`` takes; ParentError when the parent cannot provide it."""
    check_parent_ready(parent)
    kind, key = CONSUMES.get((parent.action, child_action), (None, artefact_key(parent.action, child_action)))
    return key, resolve_artefact(parent, kind, latest)


def resolve_artefact(parent: Job, kind: str, latest: bool = False) -> Path:
    """The file of ``kind`` (checkpoint | onnx | engine) in the COMPLETE job ``parent``'s results folder."""
    from skillbank.tool_call import PRODUCES

    check_parent_ready(parent)
    if PRODUCES.get(parent.action) != kind:
        raise ParentError(f"parent job {parent.id} ({parent.action}) makes no {kind}")
    folder = Path(parent.results_dir)
    if parent.route == "automl":  # an AutoML train job: the best trial's checkpoint, kept in automl/best/
        folder = folder / "best"
    if kind == "checkpoint":
        if latest:
            if (folder / LATEST_NAME).is_file():
                return folder / LATEST_NAME
            raise ParentError(f"parent job {parent.id} holds no {LATEST_NAME} in {folder}")
        hit = newest_checkpoint(folder)
        if hit is None:
            hint = f" (only {LATEST_NAME}: ask for 'latest')" if (folder / LATEST_NAME).is_file() else ""
            raise ParentError(
                f"parent job {parent.id} (train) holds no model_epoch_EEE_step_SSSSS.pth in {folder}{hint}"
            )
        return hit[2]
    if kind == "onnx":
        return _single(folder, ".onnx", parent)
    return _single(folder, ".engine", parent)


def fill_from_parent(spec: dict[str, Any], parent: Job, child_action: str, latest: bool = False) -> tuple[str, str]:
    """Set the child's artefact key in ``spec`` (nested dict) from ``parent``; returns (key, path)."""
    key, path = resolve_parent_artefact(parent, child_action, latest)
    _set(spec, key, path)
    return key, str(path)


def fill_planned(spec: dict[str, Any], parent: Job, from_parent: dict[str, str], latest: bool = False) -> str | None:
    """Set each spec key of ``from_parent`` (the planner's: key -> artefact kind) to ``parent``'s file of
    that kind; returns the file(s) set (None when there is nothing to take: the parent only orders)."""
    paths = []
    for key, kind in from_parent.items():
        path = resolve_artefact(parent, kind, latest)
        _set(spec, key, path)
        paths.append(str(path))
    if not from_parent:
        check_parent_ready(parent)
    return ", ".join(paths) or None


def _set(spec: dict[str, Any], key: str, path: Path) -> None:
    section, name = key.split(".", 1)
    spec.setdefault(section, {})
    spec[section][name] = str(path)
    if name == "trt_engine":  # an engine run has no checkpoint
        spec[section].pop("checkpoint", None)
