"""Dotted spec keys on nested mappings: the one set of rules the command line, the planner, the skill
checks, the schema generator and AutoML all use.

A key is ``section.sub.name``; an item of a list is ``name[i]`` or ``name.i``
(``dataset.train_dataset.data_sources[0].data_file``). :func:`set_dotted` creates missing (or ``null``)
sections on the way and replaces the value at the end of the key (that is what an override is for), but it
never replaces a value on the way: ``train.optim.lr`` when ``train.optim`` is ``5`` is an error naming both,
not a silent swap of ``5`` for ``{lr: ...}`` that would also drop every other key the section had. Errors
are :class:`~skillbank.specs.errors.SpecError` (one line naming the key).

Torch-free and model-free: the spec models' own view of a key (does it exist, its metadata) is in
:mod:`skillbank.spec_keys`.
"""

from __future__ import annotations

import re
from typing import Any

from skillbank.specs.errors import SpecError, format_loc

__all__ = ["flatten", "get_dotted", "key_parts", "set_dotted"]

_PIECE = re.compile(r"^([^\[\]]*)((?:\[\d+\])*)$")


def key_parts(key: str) -> list[str | int]:
    """'dataset.train_dataset.data_sources[0].data_file' (or '...data_sources.0.data_file') ->
    ['dataset', 'train_dataset', 'data_sources', 0, 'data_file']."""
    parts: list[str | int] = []
    for piece in key.split("."):
        match = _PIECE.match(piece)
        if match is None or not (match.group(1) or match.group(2)):
            raise SpecError([f"{key}: override must look like dotted.key=value"])
        name = match.group(1)
        if name:
            parts.append(int(name) if name.isdigit() else name)
        parts += [int(i) for i in re.findall(r"\d+", match.group(2))]
    return parts


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``value`` at a dotted key, creating sections on the way; ``name[i]`` or ``name.i`` sets item
    ``i`` of an existing list. A value (not a section) on the way raises :class:`SpecError`."""
    parts = key_parts(key)
    node: Any = data
    for i, part in enumerate(parts):
        here = format_loc(tuple(parts[:i]))
        last = i == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(node, list):
                raise SpecError([f"{here}: is not a list, cannot set item {part} ({key})"])
            if part >= len(node):
                raise SpecError([f"{here}: has {len(node)} item(s), cannot set {format_loc(tuple(parts[: i + 1]))}"])
        elif isinstance(node, list):
            example = format_loc((*parts[:i], 0, *parts[i:]))
            raise SpecError([f"{here}: is a list, cannot set {key} inside it; name an item, e.g. {example}"])
        elif not isinstance(node, dict):
            raise SpecError([f"{here}: is a value, cannot set {key} inside it"])
        if last:
            node[part] = value
            return
        child = node[part] if isinstance(part, int) else node.get(part)
        if child is None:
            if isinstance(parts[i + 1], int):
                raise SpecError([f"{format_loc(tuple(parts[: i + 1]))}: is not a list in the spec, cannot set {key}"])
            child = node[part] = {}
        node = child


def get_dotted(obj: Any, key: str) -> Any:
    """Value at a dotted key of a spec model or nested mapping (None when any part is unset)."""
    for part in key_parts(key):
        if obj is None:
            return None
        if isinstance(part, int):
            obj = obj[part] if isinstance(obj, list) and part < len(obj) else None
        else:
            obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part, None)
    return obj


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> {dotted key: leaf value} (lists and empty sections are leaves)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out
