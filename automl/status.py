"""``skillbank automl status``: a study's trials and best so far, read live from its storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skillbank.automl.settings import AUTOML_DIR
from skillbank.automl.storage import DB_FILE, default_url, load_for_worker, open_storage
from skillbank.automl.summary import build_summary
from skillbank.specs import SpecError


def study_status(folder: Path, url: str | None = None, study_name: str = "automl") -> dict[str, Any]:
    """The summary of the study in ``folder`` (a results_dir or its automl/), including running trials."""
    automl_dir = folder if (folder / DB_FILE).exists() or folder.name == AUTOML_DIR else folder / AUTOML_DIR
    if url is None:
        if not (automl_dir / DB_FILE).exists():
            raise SpecError(
                [f"{folder}: no AutoML study here (no {AUTOML_DIR}/{DB_FILE}; give --storage)"],
                kind="File system error",
            )
        url = default_url(automl_dir)
    storage = open_storage(url)
    study, settings = load_for_worker(storage, study_name)
    return build_summary(study, settings)


def status_text(summary: dict[str, Any]) -> str:
    p = summary["progress"]
    best = summary.get("best")
    lines = [
        f"study {summary['study']} ({summary['skill']}): {summary['algorithm']}, {summary['metric']} "
        f"{summary['direction']}",
        f"trials: {p['complete'] + p['pruned'] + p['fail']} of {p['max_trials']} finished ({p['complete']} complete, "
        f"{p['pruned']} pruned, {p['fail']} failed), {p['running']} running, {p['waiting']} waiting; "
        f"{p['epochs_trained']} epochs trained",
    ]
    base = summary.get("baseline") or {}
    if base:
        shown = base.get("value") if base.get("value") is not None else base.get("skipped") or base.get("failed")
        lines.append(f"baseline: {shown}")
    lines.append(
        f"best: trial {best['trial']} {summary['metric']} {best['value']:.5g} {best['params']}"
        if best
        else "best: none yet"
    )
    for t in summary["trials"]:
        value = f"{t['value']:.5g}" if t["value"] is not None else "-"
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items())
        lines.append(f"  {t['number']:>4} {t['state']:<8} {value:>10} epochs {t['epochs']:<3} {params}")
    return "\n".join(lines)
