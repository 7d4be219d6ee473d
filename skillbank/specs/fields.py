"""Field helpers that carry TAO-style schema metadata on pydantic fields.

Every spec field says its default, description and, where it applies, its range (``valid_min`` /
``valid_max``), its options (``valid_options``) and whether AutoML may search it (``automl_enabled``).
pydantic turns the range into ``minimum`` / ``maximum`` and a ``Literal`` into ``enum``; the TAO keys are
kept as custom JSON Schema keywords so tools that read TAO's schemas find them where they expect.
Paths are marked so the loader can resolve them against the spec file's folder.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

PATH_MARK = "x-path"


def spec_field(
    default: Any = ...,
    description: str = "",
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    options: list[Any] | None = None,
    automl: bool = False,
    path: bool = False,
    math_cond: str | None = None,
    depends_on: str | None = None,
    default_factory: Any = None,
) -> Any:
    """A pydantic ``Field`` with the depth_net schema metadata attached."""
    extra: dict[str, Any] = {"automl_enabled": automl}
    lo = ge if ge is not None else gt
    hi = le if le is not None else lt
    if lo is not None:
        extra["valid_min"] = lo
    if hi is not None:
        extra["valid_max"] = hi
    if options is not None:
        extra["valid_options"] = list(options)
    if path:
        extra[PATH_MARK] = True
    if math_cond:
        extra["math_cond"] = math_cond
    if depends_on:
        extra["depends_on"] = depends_on
    kwargs: dict[str, Any] = {"description": description, "json_schema_extra": extra}
    for name, value in (("ge", ge), ("le", le), ("gt", gt), ("lt", lt)):
        if value is not None:
            kwargs[name] = value
    if default_factory is not None:
        return Field(default_factory=default_factory, **kwargs)
    return Field(default, **kwargs)
