"""Dotted spec keys against the spec models: does a key exist, what are its metadata; merging mappings.

Skill metadata names spec keys as dotted strings (``train.optim.lr``); these helpers check them against
:class:`skillbank.specs.ExperimentSpec` so a typo in a skill is caught by ``skillbank validate``. Setting,
reading and flattening dotted keys on plain mappings is :mod:`skillbank.specs.dotted`.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from skillbank.specs import ExperimentSpec
from skillbank.specs.errors import _models_in, suggest


@lru_cache(maxsize=1024)
def field_at(dotted: str) -> FieldInfo | None:
    """The pydantic field at ``dotted`` (None if no such key). ``data_sources`` items are walked too."""
    model: type[BaseModel] | None = ExperimentSpec
    info: FieldInfo | None = None
    for part in dotted.split("."):
        if model is None:
            return None
        info = model.model_fields.get(part)
        if info is None:
            return None
        subs = _models_in(info.annotation)
        model = subs[0] if subs else None
    return info


def field_extra(dotted: str) -> dict[str, Any]:
    """The TAO metadata (valid_min, valid_max, valid_options, automl_enabled, ...) of a key."""
    info = field_at(dotted)
    extra = info.json_schema_extra if info is not None else None
    return extra if isinstance(extra, dict) else {}


def unknown_key_message(dotted: str) -> str:
    """Why ``dotted`` is not a spec key, with a suggestion for the first wrong part."""
    model: type[BaseModel] | None = ExperimentSpec
    for i, part in enumerate(dotted.split(".")):
        if model is None or part not in model.model_fields:
            where = ".".join(dotted.split(".")[:i]) or "the top level"
            choices = list(model.model_fields) if model else []
            return f"not a spec key ('{part}' is not in {where}){suggest(part, choices)}"
        subs = _models_in(model.model_fields[part].annotation)
        model = subs[0] if subs else None
    return "not a spec key"


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
