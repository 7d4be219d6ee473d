"""Results folder resolution and the saved experiment.yaml (docs/spec_and_results.md, "The results folder")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from skillbank.atomic import atomic_write
from skillbank.runtime.errors import ConfigurationError
from skillbank.specs import ExperimentSpec, spec_to_dict


def resolve_results_dir(spec: ExperimentSpec, action: str) -> Path:
    """``<action>.results_dir`` if set, else ``<results_dir>/<action>``; neither set is an error."""
    section = getattr(spec, action, None)
    own = getattr(section, "results_dir", None)
    if own:
        return Path(own)
    if spec.results_dir:
        return Path(spec.results_dir) / action
    raise ConfigurationError(f"results_dir: set results_dir (or {action}.results_dir) to say where results go")


def guess_results_dir(raw: dict[str, Any], action: str, base: Path) -> Path | None:
    """Best-effort results folder of a spec that failed validation, so its FAILURE line still lands."""
    section = raw.get(action) if isinstance(raw.get(action), dict) else {}
    for value, suffix in ((section.get("results_dir"), None), (raw.get("results_dir"), action)):
        if isinstance(value, str) and value:
            p = Path(value).expanduser()
            p = p if p.is_absolute() else base / p
            return p / suffix if suffix else p
    return None


def save_experiment(spec: ExperimentSpec, results_dir: Path) -> Path:
    """Write the resolved spec as nested YAML (never dotted keys) to ``experiment.yaml``."""
    path = results_dir / "experiment.yaml"
    atomic_write(path, yaml.safe_dump(spec_to_dict(spec), sort_keys=False))
    return path
