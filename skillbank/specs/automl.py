"""``automl`` section: settings of an AutoML (hyperparameter search) run, with TAO's key names.

The depth_net actions ignore this section; ``skillbank automl run -e spec.yaml`` reads it. Unset values
(``metric``, ``direction``, an empty ``automl_hyperparameters``) take the model skill's defaults
(its ``references/skill_info.yaml`` block ``automl``). ``custom_param_ranges`` narrows the range of a
searched key; a range reaching outside the spec field's own range is refused here, naming the key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from skillbank.specs.base import SpecSection
from skillbank.specs.fields import spec_field

ALGORITHMS = ["bayesian", "random", "hyperband", "asha", "bohb"]
#: Algorithms whose pruner stops trials early (each trial may train up to automl_max_epochs).
PRUNING_ALGORITHMS = {"hyperband", "asha", "bohb"}


class ParamRange(SpecSection):
    """One searched key's range: ``valid_min`` and ``valid_max``, or ``valid_options``."""

    valid_min: float | None = spec_field(None, "Lowest value searched.")
    valid_max: float | None = spec_field(None, "Highest value searched.")
    valid_options: list[Any] | None = Field(None, description="The values searched (instead of a range).")

    @model_validator(mode="after")
    def _check(self) -> ParamRange:
        has_range = self.valid_min is not None or self.valid_max is not None
        if self.valid_options is not None:
            if has_range:
                raise ValueError("valid_options: give valid_options or valid_min/valid_max, not both")
            if not self.valid_options:
                raise ValueError("valid_options: needs at least one value")
            return self
        if self.valid_min is None or self.valid_max is None:
            raise ValueError("valid_min: give both valid_min and valid_max (or valid_options)")
        if not self.valid_min < self.valid_max:
            raise ValueError(f"valid_min: {self.valid_min} must be below valid_max {self.valid_max}")
        return self


def field_at(dotted: str) -> Any:
    """The pydantic FieldInfo of a leaf spec key (``train.optim.lr``), or None if there is none (or it names
    a section)."""
    from skillbank.spec_keys import field_at as any_field_at  # lazy: spec_keys imports this package
    from skillbank.specs.errors import _models_in

    info = any_field_at(dotted)
    return None if info is None or _models_in(info.annotation) else info


def field_range(dotted: str) -> tuple[float | None, float | None, list[Any] | None, bool]:
    """(valid_min, valid_max, valid_options, automl_enabled) of a spec key's field; KeyError if no such key."""
    field = field_at(dotted)
    if field is None:
        raise KeyError(dotted)
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return extra.get("valid_min"), extra.get("valid_max"), extra.get("valid_options"), bool(extra.get("automl_enabled"))


def _range_problem(key: str, rng: ParamRange) -> str | None:
    """Why ``rng`` does not fit the spec field at ``key`` (None when it fits)."""
    try:
        lo, hi, options, searchable = field_range(key)
    except KeyError:
        return "not a spec key"
    if not searchable:
        return "the spec field is not AutoML-searchable"
    values = rng.valid_options if rng.valid_options is not None else [rng.valid_min, rng.valid_max]
    if options is not None:
        bad = [v for v in values if v not in options]
        return f"{bad[0]!r} is not one of the field's options {options}" if bad else None
    for value in values:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return f"{value!r} is not a number"
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return f"{value} is outside the spec field's range [{lo}, {hi}]"
    return None


class AutomlConfig(SpecSection):
    """``automl``: hyperparameter search over ``depth_net train`` runs (``skillbank automl run``)."""

    automl_algorithm: Literal["bayesian", "random", "hyperband", "asha", "bohb"] = spec_field(
        "bayesian",
        "Search algorithm: bayesian (TPE; Gaussian process for a small continuous space), random, hyperband, "
        "asha (successive halving), bohb (TPE + Hyperband).",
        options=ALGORITHMS,
    )
    automl_max_recommendations: int = spec_field(20, "Trials in total.", ge=1, le=10000)
    automl_max_epochs: int = spec_field(
        27, "Epochs a trial may train with hyperband, asha and bohb (the pruner stops most earlier).", ge=1, le=100000
    )
    automl_reduction_factor: int = spec_field(
        3, "Hyperband / successive-halving reduction factor (keep the best 1/N at each rung).", ge=2, le=100
    )
    automl_max_concurrent: int = spec_field(4, "Trials run at once by one runner.", ge=1, le=256)
    automl_hyperparameters: list[str] = spec_field(
        default_factory=list,
        description="Spec keys to search (a subset of the model skill's allow-list); empty = the whole allow-list.",
    )
    custom_param_ranges: dict[str, ParamRange] = spec_field(
        default_factory=dict,
        description="Narrower ranges per searched key: {key: {valid_min, valid_max}} or {key: {valid_options}}.",
    )
    metric: str | None = spec_field(
        None, "Validation KPI to optimise, as status.json names it (unset = the skill's: val/epe, mono val/d1)."
    )
    direction: Literal["minimize", "maximize"] | None = spec_field(
        None, "minimize or maximize metric (unset = the skill's direction).", options=["minimize", "maximize"]
    )
    automl_delete_intermediate_ckpt: bool = spec_field(
        True, "Delete the checkpoints of trials that are not the best (the best is copied to automl/best/)."
    )
    seed: int = spec_field(0, "Seed of the search algorithm's sampler.", ge=0)

    @model_validator(mode="after")
    def _check(self) -> AutomlConfig:
        for key, rng in self.custom_param_ranges.items():
            problem = _range_problem(key, rng)
            if problem:
                raise ValueError(f"custom_param_ranges.{key}: {problem}")
        for key in self.automl_hyperparameters:
            if field_at(key) is None:
                raise ValueError(f"automl_hyperparameters: {key!r} is not a spec key")
        return self
