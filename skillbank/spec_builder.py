"""Build the spec of one planned action: template + key_defaults + spec_params + data + request overrides.

Layers, later ones win:

1. the skill's generated ``references/spec_template_<action>.yaml`` (complete, per-type defaults);
2. ``key_defaults`` (for FFS the whole bp2 block);
3. ``spec_params.<action>``: literals, and resolver values (:mod:`skillbank.resolvers`);
4. ``data_sources.<action>``: dataset folders from the request become ``{dataset_name, data_file}``
   entries (``<folder>/<path>``; a ``.txt`` input is used as the file itself);
5. the request's ``spec_overrides``, nested or dotted, with shorthand keys (``learning_rate`` ->
   ``train.optim.lr``) expanded. They are applied last and never changed, so what the request said
   (datasets, output dirs, GPU settings, checkpoints) survives whatever the route.

Input paths (datasets, results folder, checkpoints) are made absolute against the current folder;
``spec_overrides`` values are kept exactly as given. The result is validated with the spec models and
against the action's JSON Schema. ``???`` left by the template (and not filled) is reported in
:attr:`BuiltSpec.missing`; optional data splits left empty become empty lists instead.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from skillbank.registry import Skill
from skillbank.resolvers import RESOLVERS, resolve
from skillbank.skill_files import load_yaml_mapping
from skillbank.spec_keys import field_at, unknown_key_message
from skillbank.specs.dotted import flatten, set_dotted
from skillbank.specs.errors import SpecError

PLACEHOLDER = "???"
SPLIT_OF_ACTION = {"evaluate": "test_dataset", "inference": "infer_dataset"}


class SpecBuildError(ValueError):
    """The request's values do not make a valid spec. One line naming the dotted key."""


@dataclass
class BuiltSpec:
    spec: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@lru_cache(maxsize=64)
def _template(path: str, mtime: float) -> dict[str, Any]:
    return load_yaml_mapping(Path(path), path)


@lru_cache(maxsize=64)
def _validator(path: str, mtime: float) -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(Path(path).read_text(encoding="utf-8")))


def _set(spec: dict[str, Any], key: str, value: Any) -> None:
    """:func:`set_dotted`, its error raised as the one-line :class:`SpecBuildError` the planner asks about."""
    try:
        set_dotted(spec, key, value)
    except SpecError as exc:
        raise SpecBuildError(exc.problems[0]) from None


def load_template(skill: Skill, action: str) -> dict[str, Any]:
    """A fresh copy of the skill's template for ``action`` (an empty spec if none is generated yet)."""
    path = skill.template_path(action)
    if path is None or not path.is_file():
        return {}
    return copy.deepcopy(_template(str(path), path.stat().st_mtime))


def normalize_overrides(skill: Skill, overrides: dict[str, Any]) -> dict[str, Any]:
    """Nested or dotted overrides, shorthands expanded -> {dotted spec key: value}. Unknown keys raise."""
    shorthand = skill.info.get("spec_shorthand_keys") or {}
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in shorthand:
            out[shorthand[key]] = value
            continue
        if isinstance(value, dict) and field_at(key) is not None and not key.endswith("data_sources"):
            for sub, item in flatten(value).items():
                out[f"{key}.{sub}"] = item
            continue
        out[key] = value
    for key in out:
        if field_at(key) is None:
            known = ", ".join(sorted(shorthand))
            raise SpecBuildError(f"spec_overrides.{key}: {unknown_key_message(key)} (shorthands: {known})")
    return out


def _data_entries(skill: Skill, inputs: dict[str, Any], source: str, path: str) -> list[dict[str, str]] | None:
    given = inputs.get(source)
    if not given:
        return None
    folders = given if isinstance(given, list) else [given]
    name = inputs.get("dataset_name") or skill.info.get("default_dataset_name") or "GenericDataset"
    entries = []
    for folder in folders:
        folder = str(folder)
        data_file = folder if folder.endswith(".txt") else os.path.join(folder, path)
        entries.append({"dataset_name": name, "data_file": data_file})
    return entries


def _placeholders(data: Any, prefix: str = "") -> list[str]:
    if isinstance(data, dict):
        return [k for key, v in data.items() for k in _placeholders(v, f"{prefix}{key}.")]
    if isinstance(data, list):
        return [k for i, v in enumerate(data) for k in _placeholders(v, f"{prefix.rstrip('.')}[{i}].")]
    return [prefix.rstrip(".")] if data == PLACEHOLDER else []


PATH_INPUTS = (
    "train_datasets",
    "eval_dataset",
    "inference_dataset",
    "results_dir",
    "checkpoint",
    "parent_job_dir",
    "pretrained_model",
    "resume_model",
    "onnx_file",
    "trt_engine",
)


def absolute_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """Input paths made absolute against the current folder (where the user typed them), as depth_net
    does for command-line overrides; a written spec file may live anywhere, and relative paths inside a
    spec file resolve against the file's folder, which is rarely what the user meant."""
    out = dict(inputs)
    for key in PATH_INPUTS:
        value = out.get(key)
        if isinstance(value, str):
            out[key] = os.path.abspath(os.path.expanduser(value))
        elif isinstance(value, list):
            out[key] = [os.path.abspath(os.path.expanduser(str(v))) for v in value]
    return out


def build_spec(skill: Skill, action: str, inputs: dict[str, Any], overrides: dict[str, Any]) -> BuiltSpec:
    """The nested spec for ``action`` of ``skill``; raises :class:`SpecBuildError` when it is invalid."""
    inputs = absolute_inputs(inputs)
    dotted_overrides = normalize_overrides(skill, overrides)
    spec = load_template(skill, action)
    built = BuiltSpec(spec=spec)
    for key, value in (skill.info.get("key_defaults") or {}).items():
        _set(spec, key, copy.deepcopy(value))
    for key, value in dotted_overrides.items():  # early, so resolvers see e.g. the engine data type
        _set(spec, key, copy.deepcopy(value))

    engine = inputs.get("trt_engine") if action in SPLIT_OF_ACTION else None
    for key, param in ((skill.info.get("spec_params") or {}).get(action) or {}).items():
        if key in dotted_overrides:
            continue
        if isinstance(param, str) and param in RESOLVERS:
            if engine and key == f"{action}.checkpoint":
                _set(spec, key, None)
                continue
            res = resolve(param, action, inputs, spec)
            if res.value is not None:
                _set(spec, key, res.value)
                built.inputs[key] = res.value
            if res.note:
                built.notes.append(f"{key}: {res.note}")
            if res.value is None and param == "output_dir":
                built.missing.append(f"{key}: {res.note}")
        else:
            value = param[len("literal:") :] if isinstance(param, str) and param.startswith("literal:") else param
            _set(spec, key, copy.deepcopy(value))
    if engine:
        _set(spec, f"{action}.trt_engine", engine)
        built.inputs[f"{action}.trt_engine"] = engine

    optional = {
        k
        for k, v in ((skill.info.get("actions") or {}).get(action) or {}).get("inputs", {}).items()
        if v.get("optional")
    }
    for key, ds in ((skill.info.get("data_sources") or {}).get(action) or {}).items():
        if key in dotted_overrides:
            continue
        entries = _data_entries(skill, inputs, ds["source"], ds["path"])
        if entries is not None:
            _set(spec, key, entries)
            built.inputs[key] = entries
        elif key in optional:
            _set(spec, key, [])
    for key, value in dotted_overrides.items():  # last: the request's values are never changed
        _set(spec, key, copy.deepcopy(value))

    built.missing += [f"{k}: fill in (template placeholder ???)" for k in _placeholders(spec)]
    _validate(skill, action, spec)
    return built


def _validate(skill: Skill, action: str, spec: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from skillbank.specs import ExperimentSpec
    from skillbank.specs.errors import spec_error_from_validation

    try:
        ExperimentSpec.model_validate(spec)
    except ValidationError as exc:
        raise SpecBuildError(str(spec_error_from_validation(ExperimentSpec, exc))) from None
    schema = skill.schema_path(action)
    if schema is not None and schema.is_file():
        validator = _validator(str(schema), schema.stat().st_mtime)
        for err in validator.iter_errors(spec):
            where = ".".join(str(p) for p in err.absolute_path) or "(top)"
            if "required" in err.message or err.validator in ("anyOf", "allOf", "required"):
                continue  # what is still missing is reported as missing, not as an invalid value
            raise SpecBuildError(f"{where}: {err.message} (schema {schema.name})")
