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

from skillbank.specs.dotted import key_parts, set_dotted
from skillbank.specs.errors import SpecError, format_loc, spec_error_from_validation
from skillbank.specs.experiment import ExperimentSpec
from skillbank.specs.fields import PATH_MARK

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _nested(parts: list[str]) -> str:
    """['train', 'optim', 'lr'] -> 'train: {optim: {lr: ...}}'."""
    text = "..."
    for part in reversed(parts[1:]):
        text = f"{{{part}: {text}}}"
    return f"{parts[0]}: {text}"


# Mappings whose keys ARE dotted spec keys by design (TAO's format: ``custom_param_ranges: {train.optim.lr:
# {valid_min: ..., valid_max: ...}}``): their keys are exempt from the dotted-key rule.
DOTTED_KEY_MAPPINGS = {("automl", "custom_param_ranges")}


def _check_keys(node: yaml.Node, name: str, path: list[str | int], seen_nodes: set[int]) -> None:
    """Refuse, naming file:line, what YAML accepts but a spec cannot mean: a key given twice (YAML keeps
    the last silently), a dotted key (dotted keys are the command line's), a key that is not a name."""
    if id(node) in seen_nodes:  # an alias of a node already checked (or a recursive one)
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_keys(item, name, [*path, i], seen_nodes)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            _check_keys(value_node, name, path, seen_nodes)
            continue
        line = key_node.start_mark.line + 1
        where = f" under {format_loc(tuple(path))}" if path else ""
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR_TAG or not key_node.value:
            shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else type(key_node).__name__
            raise SpecError(
                [
                    f"{name}:{line}: key {shown!r}{where} is not a name; spec keys are words such as "
                    "results_dir, model, train"
                ]
            )
        key = key_node.value
        if key in lines:
            raise SpecError(
                [
                    f"{name}:{line}: key {format_loc((*path, key))!r} is given twice (lines {lines[key]} "
                    f"and {line}); YAML would keep only the last: merge them into one"
                ]
            )
        lines[key] = line
        if "." in key and tuple(path) not in DOTTED_KEY_MAPPINGS:
            dotted = format_loc((*path, key))
            if all(isinstance(part, str) for part in path):
                nested = _nested([*path, *key.split(".")])  # type: ignore[list-item]
            else:  # inside a list item: nested from that item
                nested = f"under {format_loc(tuple(path))}: {_nested(key.split('.'))}"
            raise SpecError(
                [
                    f"{name}:{line}: {dotted!r} is a dotted key; in a spec file write it nested: "
                    f"{nested}, or pass {dotted}=... on the command line"
                ]
            )
        _check_keys(value_node, name, [*path, key], seen_nodes)


def read_yaml_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a spec file: a YAML mapping, with one-line errors naming the file (and line where there is one)."""
    p = Path(path)
    if p.is_dir():
        raise SpecError([f"{p}: is a folder; expected a spec YAML file"], kind="File system error")
    if not p.is_file():
        raise SpecError([f"{p}: spec file not found"], kind="File system error")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            [
                f"{p.name}: not a UTF-8 text file (byte {exc.object[exc.start]:#04x} at offset "
                f"{exc.start}); expected a YAML spec"
            ]
        ) from None
    except OSError as exc:
        raise SpecError([f"{p}: cannot read the spec file ({exc.strerror or exc})"], kind="File system error") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is None:
            raise SpecError(
                [f"{p.name}: the spec file is empty; expected spec sections such as results_dir, model and dataset"]
            )
        _check_keys(root, p.name, [], set())
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise SpecError([f"{p.name}{line}: invalid YAML: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise SpecError([f"{p.name}: invalid YAML: {exc}"]) from None
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


def _resolve_paths(model: BaseModel, base: Path, cwd: Path, overridden: set[str], prefix: str = "") -> None:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        dotted = f"{prefix}{name}"
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get(PATH_MARK) and isinstance(value, str) and value and not os.path.isabs(os.path.expanduser(value)):
            root = cwd if any(dotted == o or dotted.startswith(o + ".") for o in overridden) else base
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
        overridden.add(".".join(str(part) for part in key_parts(key)))
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error_from_validation(ExperimentSpec, exc) from None
    _resolve_paths(spec, base, Path.cwd(), overridden)
    return spec


def spec_to_dict(spec: BaseModel) -> dict[str, Any]:
    """Nested plain mapping (never dotted keys), as saved in experiment.yaml."""
    return spec.model_dump(mode="json")
