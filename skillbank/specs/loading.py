"""Load a spec: YAML file + dotted overrides -> validated :class:`ExperimentSpec`.

``depth_net <action> -e spec.yaml train.optim.lr=1e-5 model.hidden_dims=[128]``: each override's value
is parsed as YAML (so numbers, lists and booleans get their types), set at its dotted key, and the whole
spec is validated. Relative paths in the file resolve against the file's folder; relative paths given as
overrides resolve against the current folder (where the user typed them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import SpecError, spec_error_from_validation
from .experiment import ExperimentSpec
from .fields import PATH_MARK


def read_yaml_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file (and line for syntax errors)."""
    p = Path(path)
    if not p.is_file():
        raise SpecError([f"{p}: spec file not found"], kind="File system error")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise SpecError([f"{p.name}{line}: invalid YAML: {exc.problem}"]) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SpecError([f"{p.name}: invalid YAML: {exc}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError([f"{p.name}: expected a mapping of spec sections at the top, got {type(data).__name__}"])
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """'train.optim.lr=1e-5' -> ('train.optim.lr', 1e-05)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise SpecError([f"{text}: override must look like dotted.key=value"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``value`` at a dotted key, creating sections on the way."""
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise SpecError([f"{'.'.join(parts[: i + 1])}: is a value, cannot set {key} inside it"])
        node = child
    node[parts[-1]] = value


def _resolve_paths(model: BaseModel, base: Path, cwd: Path, overridden: set[str], prefix: str = "") -> None:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        dotted = f"{prefix}{name}"
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get(PATH_MARK) and isinstance(value, str) and value and not os.path.isabs(os.path.expanduser(value)):
            root = cwd if dotted in overridden else base
            object.__setattr__(model, name, str((root / os.path.expanduser(value)).resolve()))
        elif isinstance(value, str) and extra.get(PATH_MARK):
            object.__setattr__(model, name, os.path.expanduser(value))
        elif isinstance(value, BaseModel):
            _resolve_paths(value, base, cwd, overridden, dotted + ".")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    _resolve_paths(item, base, cwd, overridden, f"{dotted}.{i}.")


def load_spec(
    path: str | os.PathLike[str] | None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    data: dict[str, Any] | None = None,
) -> ExperimentSpec:
    """Load, override, validate and resolve paths. Raises :class:`SpecError` (one line) on any problem."""
    if data is None:
        data = read_yaml_mapping(path) if path is not None else {}
    base = Path(path).resolve().parent if path is not None else Path.cwd()
    overridden: set[str] = set()
    for text in overrides:
        key, value = parse_override(text)
        set_dotted(data, key, value)
        overridden.add(".".join(p for p in key.split(".") if not p.isdigit()))
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error_from_validation(ExperimentSpec, exc) from None
    _resolve_paths(spec, base, Path.cwd(), overridden)
    return spec


def spec_to_dict(spec: BaseModel) -> dict[str, Any]:
    """Nested plain mapping (never dotted keys), as saved in experiment.yaml."""
    return spec.model_dump(mode="json")
