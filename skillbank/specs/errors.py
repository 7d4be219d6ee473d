"""Spec errors: one clear line that names the dotted key and what was expected."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError


class SpecError(ValueError):
    """A spec problem. ``str()`` is one line: '<kind>: <dotted.key>: <what is wrong and expected>'.

    ``kind`` is the status.json failure category ("Configuration error" or "File system error").
    ``problems`` holds every problem found (the line shows the first and counts the rest).
    """

    def __init__(self, problems: list[str], kind: str = "Configuration error") -> None:
        self.problems = problems
        self.kind = kind
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:3])})" if len(problems) > 1 else ""
        super().__init__(f"{kind}: {problems[0]}{more}")

    def __reduce__(self) -> tuple[Any, ...]:  # pickles whole (e.g. from a DataLoader worker)
        return type(self), (self.problems, self.kind)

    @property
    def key(self) -> str:
        """Dotted key of the first problem."""
        return self.problems[0].split(":", 1)[0]


def format_loc(loc: tuple[Any, ...]) -> str:
    """('dataset', 'train_dataset', 'data_sources', 0) -> 'dataset.train_dataset.data_sources[0]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, dict, tuple) or typing.get_args(
        annotation
    ):
        for arg in typing.get_args(annotation):
            found += _models_in(arg)
    return found


def model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The spec section class found by walking ``loc`` from ``root`` (list indices are skipped)."""
    current: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        models = _models_in(field.annotation)
        current = models[0] if models else None
    return current


def suggest(word: str, choices: list[str]) -> str:
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


_KEY_PREFIX = re.compile(r"^([A-Za-z_][\w\[\]\.]*): (.*)$", re.S)


def describe_error(root: type[BaseModel], err: dict[str, Any]) -> str:
    """One pydantic error as '<dotted.key>: <message>'."""
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        parent = model_at(root, loc[:-1])
        choices = list(parent.model_fields) if parent else []
        return f"{format_loc(loc)}: unknown key{suggest(str(loc[-1]), choices)}"
    if kind == "missing":
        return f"{format_loc(loc)}: required key is missing"
    if kind == "value_error":
        msg = str(ctx.get("error", err.get("msg", "")))
        m = _KEY_PREFIX.match(msg)
        if m:  # validators name the key they check: prefix the section's path
            return f"{format_loc(loc + (m.group(1),))}: {m.group(2)}"
        return f"{format_loc(loc) or 'spec'}: {msg}"
    bounds = {
        "greater_than_equal": ("ge", ">="),
        "greater_than": ("gt", ">"),
        "less_than_equal": ("le", "<="),
        "less_than": ("lt", "<"),
    }
    if kind in bounds:
        name, op = bounds[kind]
        return f"{format_loc(loc)}: {value!r} is out of range; expected {op} {ctx.get(name)}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        options = re.findall(r"'([^']*)'", expected)
        return (
            f"{format_loc(loc)}: {value!r} is not an option; expected one of {expected}{suggest(str(value), options)}"
        )
    type_words = {
        "int_parsing": "an integer",
        "int_type": "an integer",
        "int_from_float": "an integer",
        "float_parsing": "a number",
        "float_type": "a number",
        "bool_parsing": "true or false",
        "bool_type": "true or false",
        "string_type": "a string",
        "list_type": "a list",
        "model_type": "a mapping of keys",
        "dict_type": "a mapping of keys",
    }
    if kind in type_words:
        got = "an empty value" if value is None else repr(value)  # `key:` with nothing after it, or `key=`
        return f"{format_loc(loc)}: expected {type_words[kind]}, got {got}"
    return f"{format_loc(loc)}: {err.get('msg', kind)}"


def spec_error_from_validation(root: type[BaseModel], exc: ValidationError, prefix: tuple[Any, ...] = ()) -> SpecError:
    problems = []
    for err in exc.errors():
        err = dict(err)
        err["loc"] = prefix + tuple(err.get("loc", ()))
        problems.append(describe_error(root, err))
    return SpecError(problems or [str(exc)])
