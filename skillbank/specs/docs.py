"""Plain-text listings of spec keys (for ``depth_net <action> --help`` and skill references)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from skillbank.specs.errors import _models_in
from skillbank.specs.experiment import ExperimentSpec


def _default_text(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "{...}" if isinstance(value, BaseModel) else repr(value)
    if field.default is PydanticUndefined:
        return "required"
    return repr(field.default)


def iter_keys(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, description) of every leaf field under ``model``."""
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        subs = _models_in(field.annotation)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            rows += iter_keys(field.annotation, dotted + ".")
            continue
        if subs:  # list of sections, e.g. data_sources
            rows.append((dotted, "[]", field.description or ""))
            rows += iter_keys(subs[0], dotted + "[].")
            continue
        rows.append((dotted, _default_text(field), field.description or ""))
    return rows


def keys_for_sections(prefixes: list[str]) -> list[tuple[str, str, str]]:
    """Leaf keys of the whole spec under any of ``prefixes`` (most specific prefix wins once)."""
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    all_rows = iter_keys(ExperimentSpec)
    for prefix in prefixes:
        for row in all_rows:
            key = row[0]
            if (key == prefix or key.startswith(prefix + ".")) and key not in seen:
                if prefix == "dataset" and key.count(".") > 1 and "_dataset." in key:
                    continue  # other splits are not read by this action
                seen.add(key)
                out.append(row)
    return out
