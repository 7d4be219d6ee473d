"""The baseline: ``depth_net evaluate`` of the starting weights on the validation data, before any trial.

The starting weights are ``train.pretrained_model_path`` (else ``train.resume_training_checkpoint_path``);
the data is ``dataset.test_dataset`` when the spec sets one, else ``dataset.val_dataset`` (what trials are
scored on). Without starting weights (training from scratch) there is nothing to score and the baseline
says so. The result is kept in the study, so a resumed study does not evaluate again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from skillbank.automl.launch import TrialLauncher, wait_until_done
from skillbank.automl.settings import StudySettings
from skillbank.automl.trials import metric_of, read_events, write_yaml
from skillbank.specs.dotted import set_dotted


def baseline_spec(settings: StudySettings, folder: Path) -> dict[str, Any] | None:
    spec = json.loads(json.dumps(settings.base_spec))
    train = spec.get("train") or {}
    weights = train.get("pretrained_model_path") or train.get("resume_training_checkpoint_path")
    if not weights:
        return None
    dataset = spec.get("dataset") or {}
    if not (dataset.get("test_dataset") or {}).get("data_sources"):
        val = dataset.get("val_dataset") or {}
        if not val.get("data_sources"):
            return None
        dataset["test_dataset"] = val
    spec["results_dir"] = str(folder)
    set_dotted(spec, "evaluate.results_dir", str(folder))
    set_dotted(spec, "evaluate.checkpoint", weights)
    set_dotted(spec, "evaluate.num_gpus", train.get("num_gpus", 1))
    if train.get("gpu_ids") is not None:
        set_dotted(spec, "evaluate.gpu_ids", train["gpu_ids"])
    return spec


def run_baseline(settings: StudySettings, launcher: TrialLauncher) -> dict[str, Any]:
    """Evaluate the starting weights: {value, checkpoint, folder} or {skipped} or {failed}."""
    folder = Path(settings.automl_dir) / "baseline"
    spec = baseline_spec(settings, folder)
    if spec is None:
        return {
            "value": None,
            "skipped": "no starting weights (train.pretrained_model_path unset) or no "
            "validation data: nothing to evaluate",
        }
    folder.mkdir(parents=True, exist_ok=True)
    spec_path = folder / "spec.yaml"
    write_yaml(spec_path, spec)
    code = wait_until_done(launcher.launch("evaluate", spec_path, folder, name="automl baseline"))
    events = read_events(folder)
    done = [e for e in events if e.get("status") in ("SUCCESS", "FAILURE")]
    last = done[-1] if done else {}
    if code != 0 or last.get("status") != "SUCCESS":
        return {
            "value": None,
            "folder": str(folder),
            "failed": str(last.get("message") or f"depth_net evaluate exited {code}"),
        }
    return {
        "value": metric_of(last.get("kpi"), settings.metric),
        "checkpoint": spec["evaluate"]["checkpoint"],
        "folder": str(folder),
        "kpi": last.get("kpi"),
    }
