"""Turn a recovered (placeholder) ``nn.Module`` tree into a flat ``state_dict``.

A module pickled by ``torch.save(model)`` keeps its tensors in three dicts of its ``__dict__``:
``_parameters`` (name -> Parameter or None), ``_buffers`` (name -> tensor or None) and ``_modules``
(name -> child module or None); ``_non_persistent_buffers_set`` names buffers that ``state_dict()``
leaves out. After :mod:`.restricted_unpickler` every module is an inert :class:`Placeholder` whose
``__dict__`` holds exactly those dicts, so walking them with dotted prefixes reproduces what
``model.state_dict()`` would have returned, in the same order, without the model's code.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from skillbank.runtime.checkpoints.errors import CheckpointFormatError
from skillbank.runtime.checkpoints.restricted_unpickler import Placeholder, placeholder_name

_MODULE_SLOTS = ("_parameters", "_buffers", "_modules")


def looks_like_module(obj: object) -> bool:
    """True for an object whose ``__dict__`` has the three dicts every ``nn.Module`` carries."""
    attrs = getattr(obj, "__dict__", None)
    return isinstance(attrs, dict) and all(isinstance(attrs.get(slot), Mapping) for slot in _MODULE_SLOTS)


def module_state_dict(root: object) -> OrderedDict[str, torch.Tensor]:
    """Flat ``{dotted name: tensor}`` of a recovered module tree, like ``nn.Module.state_dict()``.

    Parameters and buffers that are ``None`` and non-persistent buffers are skipped; tensors are
    detached copies-by-reference (no hooks). Raises :class:`CheckpointFormatError` if ``root`` is not
    module-like, a child is not module-like, an entry is not a tensor, or a module contains itself.
    """
    if not looks_like_module(root):
        raise CheckpointFormatError(
            f"pickled object {_describe(root)} is not a module: expected _parameters/_buffers/_modules dicts"
        )
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, tensor in _walk(root, "", ()):
        out[name] = tensor
    return out


def _walk(module: object, prefix: str, path: tuple[int, ...]) -> Iterator[tuple[str, torch.Tensor]]:
    if id(module) in path:
        raise CheckpointFormatError(f"module {prefix.rstrip('.') or '<root>'} contains itself; expected a tree")
    attrs: dict[str, Any] = module.__dict__
    skipped = attrs.get("_non_persistent_buffers_set") or set()
    for slot in ("_parameters", "_buffers"):
        for name, value in attrs[slot].items():
            if value is None or (slot == "_buffers" and name in skipped):
                continue
            if not isinstance(value, torch.Tensor):
                raise CheckpointFormatError(
                    f"{prefix}{name} holds {_describe(value)}; expected a tensor in {slot}"
                )
            yield prefix + name, value.detach()
    for name, child in attrs["_modules"].items():
        if child is None:
            continue
        if not looks_like_module(child):
            raise CheckpointFormatError(f"{prefix}{name} is {_describe(child)}; expected a submodule")
        yield from _walk(child, f"{prefix}{name}.", (*path, id(module)))


def foreign_classes(obj: object, limit: int = 100_000) -> list[str]:
    """Sorted dotted names of every placeholder class found in ``obj`` (breadth-first, bounded)."""
    seen_ids: set[int] = set()
    names: set[str] = set()
    queue: list[object] = [obj]
    while queue and len(seen_ids) < limit:
        item = queue.pop()
        if id(item) in seen_ids or isinstance(item, (torch.Tensor, str, bytes, int, float)):
            continue
        seen_ids.add(id(item))
        name = placeholder_name(item)
        if name is not None:
            names.add(name)
        if isinstance(item, Mapping):
            queue.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            queue.extend(item)
        elif isinstance(item, Placeholder):
            queue.extend(item.__dict__.values())
    return sorted(names)


def _describe(obj: object) -> str:
    return placeholder_name(obj) or type(obj).__name__
