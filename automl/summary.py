"""What a study leaves in ``<results_dir>/automl/``: summary.json, best/ and report.html.

summary.json = {study, algorithm, metric, direction, baseline, best: {trial, value, params, spec,
checkpoint}, trials: [{number, state, value, params, epochs, ...}], progress: {...}}. ``best/`` holds
``best_spec.yaml`` (the base spec with the best trial's values and epochs, results going back to the
spec's own results_dir, evaluate.checkpoint set to the kept checkpoint: a valid depth_net spec) and the
best trial's final checkpoint. With ``automl_delete_intermediate_ckpt`` the checkpoints of every other
finished trial are deleted (pruned and failed ones at once, completed ones when the study ends).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from skillbank.atomic import atomic_copy, atomic_write
from skillbank.automl.settings import StudySettings
from skillbank.automl.storage import BASELINE_ATTR
from skillbank.automl.trials import final_checkpoint, write_yaml
from skillbank.specs.dotted import set_dotted

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


def trial_rows(study: Any) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "value": t.value if t.state.name in ("COMPLETE", "PRUNED") else None,
            "params": dict(t.params),
            "epochs": int(t.user_attrs.get("epochs", 0)),
        }
        if t.user_attrs.get("folder"):
            row["folder"] = t.user_attrs["folder"]
        if t.system_attrs.get("failed_trial") is not None:
            row["retry_of"] = t.system_attrs["failed_trial"]
        if t.user_attrs.get("error"):
            row["error"] = t.user_attrs["error"]
        if t.datetime_start and t.datetime_complete:
            row["seconds"] = round((t.datetime_complete - t.datetime_start).total_seconds(), 1)
        rows.append(row)
    return rows


def build_summary(study: Any, settings: StudySettings) -> dict[str, Any]:
    rows = trial_rows(study)
    started = [r for r in rows if r["state"] != "WAITING"]
    counts = {s: sum(r["state"] == s for r in rows) for s in STATES}
    best = None
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    if complete:
        pick = min if settings.direction == "minimize" else max
        top = pick(complete, key=lambda r: r["value"])
        best = {"trial": top["number"], "value": top["value"], "params": top["params"]}
    return {
        "study": study.study_name,
        "skill": settings.skill,
        "algorithm": settings.algorithm,
        "metric": settings.metric,
        "direction": settings.direction,
        "baseline": study.user_attrs.get(BASELINE_ATTR),
        "best": best,
        "trials": started,
        "progress": {
            "max_trials": settings.max_trials,
            **{s.lower(): n for s, n in counts.items()},
            "epochs_trained": sum(r["epochs"] for r in started),
        },
    }


def keep_best(summary: dict[str, Any], settings: StudySettings) -> None:
    """best/best_spec.yaml and the best trial's checkpoint; fills summary['best'] spec and checkpoint."""
    best = summary.get("best")
    if not best:
        return
    folder = Path(settings.automl_dir) / f"trial_{best['trial']:03d}"
    best_dir = Path(settings.automl_dir) / "best"
    best_dir.mkdir(parents=True, exist_ok=True)
    ckpt = final_checkpoint(folder)
    kept = best_dir / ckpt.name if ckpt else None
    if ckpt is not None and kept is not None and not (kept.exists() and kept.stat().st_size == ckpt.stat().st_size):
        atomic_copy(ckpt, kept)
    for old in best_dir.glob("*.pth"):
        if kept is None or old.name != kept.name:
            old.unlink()
    spec = json.loads(json.dumps(settings.base_spec))
    for key, value in best["params"].items():
        set_dotted(spec, key, value)
    epochs = next((t["epochs"] for t in summary["trials"] if t["number"] == best["trial"]), 0)
    if epochs:
        set_dotted(spec, "train.num_epochs", epochs)
    if kept is not None:
        set_dotted(spec, "evaluate.checkpoint", str(kept))
    spec_path = best_dir / "best_spec.yaml"
    write_yaml(spec_path, spec)
    best["spec"] = str(spec_path)
    best["checkpoint"] = str(kept) if kept else None


def delete_checkpoints(summary: dict[str, Any], settings: StudySettings, *, final: bool) -> None:
    """Checkpoints of finished trials that are not the best (completed ones only when ``final``)."""
    best = (summary.get("best") or {}).get("trial")
    for row in summary["trials"]:
        if row["number"] == best or row["state"] in ("RUNNING", "WAITING"):
            continue
        if row["state"] == "COMPLETE" and not final:
            continue
        for path in Path(settings.automl_dir, f"trial_{row['number']:03d}").glob("*.pth"):
            path.unlink(missing_ok=True)


def write_summary(study: Any, settings: StudySettings, *, final: bool = False) -> dict[str, Any]:
    """summary.json (always), best/ (when a trial completed), report.html and cleanup (when ``final``)."""
    summary = build_summary(study, settings)
    keep_best(summary, settings)
    if settings.delete_intermediate_ckpt:
        delete_checkpoints(summary, settings, final=final)
    automl_dir = Path(settings.automl_dir)
    atomic_write(automl_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    if final:
        from skillbank.automl.report import write_report

        write_report(study, summary, automl_dir / "report.html")
    return summary
