"""Generated artefacts: JSON Schemas and spec templates, made from the spec models only.

- ``schemas/<action>.schema.json`` (draft 2020-12) + ``schemas/manifest.json``: the whole experiment spec,
  with TAO's field metadata (valid_min/valid_max/valid_options/automl_enabled) and what that action needs
  (e.g. train needs dataset.train_dataset.data_sources). Tools that do not import our code validate specs
  with the ``jsonschema`` package alone.
- ``references/templates/<ModelType>/spec_template_<action>.yaml``: complete, commented spec templates
  per model type (per-type defaults applied; ``???`` marks what the user must fill in).
- For each skill folder whose ``references/skill_info.yaml`` names ``network_arch`` and ``actions``:
  ``<skill>/schemas/<action>.schema.json``, ``<skill>/schemas/manifest.json`` and
  ``<skill>/references/spec_template_<action>.yaml``.

``skillbank schemas generate`` writes them; ``skillbank schemas check`` (and a test) fails on drift.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from skillbank.specs import ACTIONS, MODEL_TYPES, ExperimentSpec
from skillbank.specs.errors import _models_in
from skillbank.specs.model import MONO_TYPES

DIALECT = "https://json-schema.org/draft/2020-12/schema"
PLACEHOLDER = "???"
SCHEMA_ID = "https://skillbank.dev/schemas/depth_net"

#: Sections each action's template shows (dataset splits limited to the ones it reads).
TEMPLATE_SECTIONS: dict[str, list[str]] = {
    "train": ["results_dir", "dataset:train_dataset,val_dataset", "model", "train", "automl"],
    "evaluate": ["results_dir", "dataset:test_dataset", "model", "evaluate"],
    "inference": ["results_dir", "dataset:infer_dataset", "model", "inference"],
    "export": ["results_dir", "model", "export"],
    "gen_trt_engine": ["results_dir", "gen_trt_engine"],
    "convert": ["results_dir", "convert"],
}

#: Template values that differ from the model defaults, per model type (usual crops and sizes).
TEMPLATE_TWEAKS: dict[str, dict[str, Any]] = {
    "FastFoundationStereo": {
        "dataset.train_dataset.augmentation.crop_size": [320, 736],
        "dataset.val_dataset.augmentation.crop_size": [320, 736],
        "export.input_height": 480,
        "export.input_width": 736,
        "train.precision": "bf16",
    },
    "FoundationStereo": {
        "dataset.train_dataset.augmentation.crop_size": [320, 736],
        "dataset.val_dataset.augmentation.crop_size": [320, 736],
    },
    "MetricDepthAnything": {"train.optim.lr": 5e-6},
    "RelativeDepthAnything": {"train.optim.lr": 5e-6},
}

#: Placeholders for what the user must provide, per action.
REQUIRED_INPUTS: dict[str, dict[str, Any]] = {
    "train": {"dataset.train_dataset.data_sources": "SOURCES", "dataset.val_dataset.data_sources": "SOURCES"},
    "evaluate": {"evaluate.checkpoint": PLACEHOLDER, "dataset.test_dataset.data_sources": "SOURCES"},
    "inference": {"inference.checkpoint": PLACEHOLDER, "dataset.infer_dataset.data_sources": "SOURCES"},
    "export": {"export.checkpoint": PLACEHOLDER},
    "gen_trt_engine": {"gen_trt_engine.onnx_file": PLACEHOLDER},
    "convert": {"convert.data_root": PLACEHOLDER},
}


# --------------------------------------------------------------------------------------------- schemas
def _fill_factory_defaults(schema: dict[str, Any]) -> None:
    """pydantic omits defaults made by default_factory; put them in so the schema documents them."""
    classes: dict[str, type[BaseModel]] = {}

    def collect(model: type[BaseModel]) -> None:
        classes[model.__name__] = model
        for field in model.model_fields.values():
            for sub in _models_in(field.annotation):
                if sub.__name__ not in classes:
                    collect(sub)

    collect(ExperimentSpec)
    defs = schema.get("$defs", {})
    for name, definition in [*defs.items(), ("ExperimentSpec", schema)]:
        model = classes.get(name)
        if model is None:
            continue
        for field_name, field in model.model_fields.items():
            prop = definition.get("properties", {}).get(field_name)
            if prop is not None and field.default_factory is not None and "default" not in prop:
                value = field.default_factory()
                prop["default"] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _require_path(dotted: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A schema that requires the dotted key to be present (and match ``extra`` there)."""
    parts = dotted.split(".")
    node: dict[str, Any] = dict(extra or {})
    if not extra:
        node = {"not": {"type": "null"}}
    for part in reversed(parts):
        node = {"type": "object", "required": [part], "properties": {part: node}}
    return node


def _action_constraints(action: str) -> list[dict[str, Any]]:
    from skillbank.specs.experiment import ACTION_REQUIREMENTS

    constraints: list[dict[str, Any]] = [
        {"anyOf": [_require_path("results_dir"), _require_path(f"{action}.results_dir")]}
    ]
    for keys, _what in ACTION_REQUIREMENTS.get(action, []):
        alternatives = []
        for key in keys.split("|"):
            extra = {"type": "array", "minItems": 1} if key.endswith("data_sources") else None
            alternatives.append(_require_path(key, extra))
        constraints.append(alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives})
    if action == "convert":
        constraints.append(
            {
                "if": _require_path("convert.mode", {"const": "folders"}),
                "then": _require_path("convert.data_root"),
            }
        )
    return constraints


def _ffs_width_rule() -> dict[str, Any]:
    from skillbank.specs.model import FFS_BP2_WIDTHS

    widths = list(FFS_BP2_WIDTHS)
    return {
        "if": {
            "type": "object",
            "required": ["model"],
            "properties": {
                "model": {
                    "required": ["model_type"],
                    "properties": {"model_type": {"const": "FastFoundationStereo"}},
                    "anyOf": [{"required": [w], "properties": {w: {"not": {"type": "null"}}}} for w in widths],
                }
            },
        },
        "then": {"properties": {"model": {"required": widths}}},
        "description": "FastFoundationStereo widths go together: all 15 or none (bp2).",
    }


def action_schema(action: str) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a depth_net spec for ``action``."""
    if action not in ACTIONS:
        raise ValueError(f"action: {action!r} is not one of {', '.join(ACTIONS)}")
    body = ExperimentSpec.model_json_schema(mode="validation")
    _fill_factory_defaults(body)
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": f"{SCHEMA_ID}/{action}.schema.json",
        "title": f"depth_net {action} spec",
        "description": f"Experiment spec for `depth_net {action} -e spec.yaml`. Generated from skillbank.specs.",
        "x-action": action,
    }
    schema.update({k: v for k, v in body.items() if k not in ("title", "description")})
    schema["allOf"] = [*_action_constraints(action), _ffs_width_rule()]
    return schema


def _dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def _manifest(files: dict[str, str], scope: str) -> str:
    entries = {
        action: {"file": name, "sha256": hashlib.sha256(text.encode()).hexdigest()}
        for action, (name, text) in ((a, (f"{a}.schema.json", files[a])) for a in files)
    }
    return _dump_json(
        {
            "generator": "skillbank schemas generate",
            "source": "skillbank.specs (pydantic models)",
            "scope": scope,
            "dialect": DIALECT,
            "actions": entries,
        }
    )


# ------------------------------------------------------------------------------------------- templates
def _template_data(model_type: str, action: str) -> dict[str, Any]:
    from skillbank.specs.dotted import set_dotted

    data: dict[str, Any] = {"results_dir": "/results", "model": {"model_type": model_type}}
    stereo = model_type not in MONO_TYPES
    source = {"dataset_name": "GenericDataset" if stereo else "GenericMonoDataset", "data_file": PLACEHOLDER}
    for key, value in REQUIRED_INPUTS.get(action, {}).items():
        set_dotted(data, key, [dict(source)] if value == "SOURCES" else value)
    for key, value in TEMPLATE_TWEAKS.get(model_type, {}).items():
        set_dotted(data, key, value)
    spec = ExperimentSpec.model_validate(data)
    return spec.model_dump(mode="json")


def _yaml_scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text[:-4].strip() if text.endswith("\n...") else text.removesuffix("...").strip()


def _emit(model: type[BaseModel], values: dict[str, Any], indent: int, only: set[str] | None) -> list[str]:
    lines: list[str] = []
    pad = "  " * indent
    for name, field in model.model_fields.items():
        if only is not None and name not in only:
            continue
        value = values.get(name)
        desc = (field.description or "").strip()
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        notes = []
        if "valid_options" in extra:
            notes.append("options: " + ", ".join(str(o) for o in extra["valid_options"]))
        if "valid_min" in extra or "valid_max" in extra:
            notes.append(f"range: [{extra.get('valid_min', '-inf')}, {extra.get('valid_max', 'inf')}]")
        if extra.get("automl_enabled"):
            notes.append("AutoML-searchable")
        comment = desc + (f" ({'; '.join(notes)})" if notes else "")
        subs = _models_in(field.annotation)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            lines.append(f"{pad}# {comment}" if comment else "")
            lines.append(f"{pad}{name}:")
            lines += _emit(field.annotation, value or {}, indent + 1, None)
        elif subs and isinstance(value, list) and value:
            lines.append(f"{pad}# {comment}")
            lines.append(f"{pad}{name}:")
            for item in value:
                item_lines = _emit(subs[0], item, indent + 2, None)
                body = [ln for ln in item_lines if ln.strip() and not ln.strip().startswith("#")]
                lines.append(f"{pad}  - {body[0].strip()}")
                lines += [f"{pad}    {ln.strip()}" for ln in body[1:]]
        else:
            line = f"{pad}{name}: {_yaml_scalar(value)}"
            lines.append(f"{line}  # {comment}" if comment else line)
    return [ln for ln in lines if ln != ""]


def spec_template(model_type: str, action: str) -> str:
    """A complete, commented YAML spec template for ``model_type`` and ``action``."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type: {model_type!r} is not one of {', '.join(MODEL_TYPES)}")
    values = _template_data(model_type, action)
    header = [
        f"# depth_net {action} spec template for {model_type}.",
        "# Generated by `skillbank schemas generate` from skillbank.specs: do not edit by hand.",
        f"# Run: depth_net {action} -e this.yaml [dotted.key=value ...]. Replace every ??? first.",
    ]
    body: list[str] = []
    for section in TEMPLATE_SECTIONS[action]:
        name, _, splits = section.partition(":")
        field = ExperimentSpec.model_fields[name]
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            only = None
            if splits:
                only = set(splits.split(",")) | {k for k in field.annotation.model_fields if not k.endswith("_dataset")}
            body.append(f"{name}:")
            body += _emit(field.annotation, values[name], 1, only)
        else:
            body += _emit(ExperimentSpec, values, 0, {name})
    return "\n".join(header + body) + "\n"


# ------------------------------------------------------------------------------------------ generation
def _package_dir(package: str) -> Path:
    return Path(str(resources.files(package)))


def skill_artifacts(model_type: str, actions: list[str]) -> dict[str, str]:
    """Generated files of one skill, keyed by path relative to the skill folder."""
    files = {a: _dump_json(action_schema(a)) for a in actions}
    out = {f"schemas/{a}.schema.json": text for a, text in files.items()}
    out["schemas/manifest.json"] = _manifest(files, scope=f"skill ({model_type})")
    for action in actions:
        out[f"references/spec_template_{action}.yaml"] = spec_template(model_type, action)
    return out


def _skill_targets(skills_root: Path) -> list[tuple[Path, str, list[str]]]:
    targets = []
    for info in sorted(skills_root.glob("*/references/skill_info.yaml")):
        try:
            data = yaml.safe_load(info.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:  # never skip silently: the skill would get no generated files
            raise ValueError(f"{info}: invalid YAML, cannot generate its schemas and templates: {exc}") from None
        arch, actions = data.get("network_arch"), data.get("actions")
        if arch in MODEL_TYPES and isinstance(actions, dict):
            known = [a for a in actions if a in ACTIONS]
            targets.append((info.parent.parent, arch, known))
    return targets


def render_all(
    schemas_root: Path | None = None, references_root: Path | None = None, skills_root: Path | None = None
) -> dict[Path, str]:
    """Every generated file (absolute path -> content)."""
    schemas_root = schemas_root or _package_dir("skillbank.schemas")
    references_root = references_root or _package_dir("skillbank.references")
    skills_root = skills_root or _package_dir("skillbank.skills")
    out: dict[Path, str] = {}
    files = {a: _dump_json(action_schema(a)) for a in ACTIONS}
    for action, text in files.items():
        out[schemas_root / f"{action}.schema.json"] = text
    out[schemas_root / "manifest.json"] = _manifest(files, scope="depth_net (all model types)")
    for model_type in MODEL_TYPES:
        for action in ACTIONS:
            if model_type in MONO_TYPES and action == "convert":
                continue
            out[references_root / "templates" / model_type / f"spec_template_{action}.yaml"] = spec_template(
                model_type, action
            )
    for skill_dir, arch, actions in _skill_targets(skills_root):
        for rel, text in skill_artifacts(arch, actions).items():
            out[skill_dir / rel] = text
    return out


def generate(**roots: Path) -> list[Path]:
    """Write every generated file whose content changed; returns the paths written."""
    from skillbank.atomic import atomic_write

    written = []
    for path, text in render_all(**roots).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            atomic_write(path, text)
            written.append(path)
    return written


def drift(**roots: Path) -> list[Path]:
    """Generated files that are missing or differ from what the models produce now."""
    return [
        path
        for path, text in render_all(**roots).items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
