"""The search space of a study: the skill's allow-list, narrowed by the spec, inside the spec fields' ranges.

Each searched key comes from the model skill's ``automl.hyperparameters`` (its allow-list, with ranges);
``automl.automl_hyperparameters`` may pick a subset and ``automl.custom_param_ranges`` may narrow a range
or give options. The range is intersected with the spec field's own range (``valid_min``/``valid_max``
of the spec models); a custom range outside it, a key outside the allow-list, or a key matching the
skill's ``never_search`` patterns (FFS: every ``model.*`` key, so the bp2 widths never move) is refused
with a one-line :class:`~skillbank.specs.SpecError` naming the key. A float range whose ends are two or
more decades apart (both above zero), or that the skill marks ``log_scale``, is searched on a log scale.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import Any

from skillbank.specs import SpecError
from skillbank.specs.automl import ParamRange, field_at, field_range


@dataclass(frozen=True)
class Param:
    """One searched spec key: a float range (``low``..``high``, ``log``) or a list of ``options``."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    options: tuple[Any, ...] | None = None

    def describe(self) -> str:
        if self.options is not None:
            return f"{self.key} in {list(self.options)}"
        return f"{self.key} in [{self.low:g}, {self.high:g}]{' (log)' if self.log else ''}"


def _is_int_field(key: str) -> bool:
    field = field_at(key)
    return field is not None and field.annotation is int


def _param(key: str, rng: dict[str, Any], where: str) -> Param:
    if "valid_options" in rng and rng["valid_options"] is not None:
        return Param(key, options=tuple(rng["valid_options"]))
    lo, hi = rng.get("valid_min"), rng.get("valid_max")
    if lo is None or hi is None:
        raise SpecError([f"{where}: needs valid_min and valid_max, or valid_options"])
    f_lo, f_hi, _, _ = field_range(key)
    lo = max(float(lo), float(f_lo)) if f_lo is not None else float(lo)
    hi = min(float(hi), float(f_hi)) if f_hi is not None else float(hi)
    if not lo < hi:
        raise SpecError(
            [
                f"{where}: the range [{rng.get('valid_min')}, {rng.get('valid_max')}] leaves nothing "
                f"inside the spec field's range [{f_lo}, {f_hi}]"
            ]
        )
    integer = _is_int_field(key)
    log = bool(rng.get("log_scale")) or (lo > 0 and hi / lo >= 100.0)
    if lo <= 0:
        log = False
    if integer:
        lo, hi = float(math.ceil(lo)), float(math.floor(hi))
    return Param(key, lo, hi, log, integer)


def build_space(skill_automl: dict[str, Any], names: list[str], custom: dict[str, ParamRange]) -> list[Param]:
    """The study's parameters (see the module docstring). Raises :class:`SpecError` naming the key."""
    allowed: dict[str, dict[str, Any]] = dict(skill_automl.get("hyperparameters") or {})
    never = list(skill_automl.get("never_search") or [])
    if not allowed:
        raise SpecError(["automl: the model skill allows no hyperparameter to be searched (automl.hyperparameters)"])
    for key in [*names, *custom]:
        for pattern in never:
            if fnmatch.fnmatchcase(key, pattern):
                where = "automl_hyperparameters" if key in names else f"custom_param_ranges.{key}"
                raise SpecError([f"automl.{where}: {key} is never searched for this model (matches {pattern!r})"])
        if key not in allowed:
            where = "automl_hyperparameters" if key in names else f"custom_param_ranges.{key}"
            raise SpecError([f"automl.{where}: {key} is not in the model skill's allow-list ({', '.join(allowed)})"])
    chosen = names or list(allowed)
    extra = [k for k in custom if k not in chosen]
    if extra:
        raise SpecError(
            [f"automl.custom_param_ranges.{extra[0]}: not searched (automl_hyperparameters is {', '.join(chosen)})"]
        )
    params = []
    for key in chosen:
        if key in custom:
            rng = custom[key].model_dump(exclude_none=True)
            rng["log_scale"] = allowed[key].get("log_scale", False)
            params.append(_param(key, rng, f"automl.custom_param_ranges.{key}"))
        else:
            params.append(_param(key, allowed[key], f"automl.hyperparameters.{key} (model skill)"))
    return params


def suggest(trial: Any, params: list[Param]) -> dict[str, Any]:
    """Values for every parameter from an Optuna trial (names are the dotted spec keys)."""
    values: dict[str, Any] = {}
    for p in params:
        if p.options is not None:
            values[p.key] = trial.suggest_categorical(p.key, list(p.options))
        elif p.integer:
            values[p.key] = trial.suggest_int(p.key, int(p.low), int(p.high), log=p.log)
        else:
            values[p.key] = trial.suggest_float(p.key, p.low, p.high, log=p.log)
    return values


def is_small_continuous(params: list[Param]) -> bool:
    """At most 3 float ranges and nothing else: a Gaussian-process sampler fits such a space."""
    return 0 < len(params) <= 3 and all(p.options is None and not p.integer for p in params)
