"""Put a normalised state_dict into a network, strictly, with errors that name spec fields.

Policy (issue 4, item 4):

* keys owned by FFS's never-run modules (:mod:`.never_run`) that the network does not build are dropped
  and listed, with a one-line log of how many tensors and parameters went;
* optional constants (``dx``, the lookup offsets, which upstream's pickle may lack) may be missing: the
  network keeps its own value;
* every other missing or unexpected key, and every shape difference, is an error. Shape differences
  are explained through :mod:`.field_rules` ("model.gru_hidden: checkpoint has 60, spec has 128 (...)")
  instead of a size dump.

:func:`plan_load` does all the checking on shapes alone (no network needed, so tests run on the TSV's
manifest); :func:`load_into` applies it to an ``nn.Module``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from skillbank.runtime.checkpoints.errors import CheckpointMismatchError
from skillbank.runtime.checkpoints.field_rules import (
    DEFAULT_FIELD_RULES,
    FieldDiagnosis,
    FieldRule,
    diagnose,
    format_shape,
)
from skillbank.runtime.checkpoints.never_run import NEVER_RUN_MODULES, DroppedModule, never_run_keys, summarise_dropped

log = logging.getLogger(__name__)

DEFAULT_ALLOWED_MISSING: tuple[str, ...] = ("dx",)
_EXAMPLES = 3


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_into` did: loaded keys, dropped never-run keys, constants kept from the model."""

    loaded: tuple[str, ...]
    dropped: tuple[str, ...]
    dropped_modules: tuple[DroppedModule, ...]
    kept_from_model: tuple[str, ...]

    @property
    def dropped_parameters(self) -> int:
        return sum(m.parameters for m in self.dropped_modules)

    def drop_summary(self) -> str:
        """One line: count, parameter total and owning modules of the dropped never-run tensors."""
        if not self.dropped:
            return "dropped no never-run tensors"
        owners = ", ".join(f"{m.module} ({m.parameters:,})" for m in self.dropped_modules)
        return (
            f"dropped {len(self.dropped)} never-run tensors ({self.dropped_parameters:,} parameters) "
            f"from {owners}"
        )

    def __str__(self) -> str:
        kept = f"; kept model's own {', '.join(self.kept_from_model)}" if self.kept_from_model else ""
        return f"loaded {len(self.loaded)} tensors; {self.drop_summary()}{kept}"


@dataclass(frozen=True)
class LoadPlan:
    """The checked outcome of matching a state_dict against expected shapes (no errors left)."""

    to_load: OrderedDict[str, torch.Tensor]
    report: LoadReport


def plan_load(
    expected_shapes: Mapping[str, Sequence[int]],
    state_dict: Mapping[str, torch.Tensor],
    *,
    spec_fields: Sequence[FieldRule] = DEFAULT_FIELD_RULES,
    never_run: Sequence[str] = NEVER_RUN_MODULES,
    allowed_missing: Sequence[str] = DEFAULT_ALLOWED_MISSING,
    target: str = "network",
) -> LoadPlan:
    """Check ``state_dict`` against ``expected_shapes`` (key -> shape) and decide what to load.

    Raises :class:`CheckpointMismatchError` with one line covering every problem, shape problems
    grouped by the spec field that explains them.
    """
    dropped = never_run_keys(state_dict, expected_shapes, never_run)
    dropped_set = set(dropped)
    unexpected = [k for k in state_dict if k not in expected_shapes and k not in dropped_set]
    missing = [k for k in expected_shapes if k not in state_dict]
    kept = tuple(k for k in missing if k in set(allowed_missing))
    missing = [k for k in missing if k not in set(kept)]

    diagnosed: dict[tuple[str, object, object], list[FieldDiagnosis]] = {}
    unexplained: list[str] = []
    for key, value in state_dict.items():
        if key not in expected_shapes:
            continue
        have, want = tuple(value.shape), tuple(expected_shapes[key])
        if have == want:
            continue
        found = diagnose(key, have, want, spec_fields)
        if found is None:
            unexplained.append(f"{key} {format_shape(have)} vs {format_shape(want)}")
        else:
            diagnosed.setdefault((found.field, found.checkpoint_value, found.spec_value), []).append(found)

    problems = [_field_line(group) for group in diagnosed.values()]
    if unexplained:
        if diagnosed:
            problems.append(f"{len(unexplained)} more tensors with derived shapes (e.g. {unexplained[0]})")
        else:
            problems.append("shape mismatch: " + "; ".join(unexplained[:_EXAMPLES]) + _more(unexplained))
    if missing:
        problems.append(f"{len(missing)} tensors missing from the checkpoint (e.g. {', '.join(missing[:_EXAMPLES])})")
    if unexpected:
        problems.append(
            f"{len(unexpected)} unexpected tensors in the checkpoint (e.g. {', '.join(unexpected[:_EXAMPLES])})"
        )
    if problems:
        raise CheckpointMismatchError(
            f"checkpoint does not fit the {target}: " + "; ".join(problems)
            + " (expected the checkpoint to match the spec's model fields)"
        )

    to_load = OrderedDict((k, v) for k, v in state_dict.items() if k in expected_shapes)
    report = LoadReport(
        loaded=tuple(to_load),
        dropped=tuple(dropped),
        dropped_modules=tuple(summarise_dropped(state_dict, dropped, never_run)),
        kept_from_model=kept,
    )
    return LoadPlan(to_load, report)


def load_into(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    spec_fields: Sequence[FieldRule] = DEFAULT_FIELD_RULES,
    never_run: Sequence[str] = NEVER_RUN_MODULES,
    allowed_missing: Sequence[str] = DEFAULT_ALLOWED_MISSING,
) -> LoadReport:
    """Load ``state_dict`` (already key-normalised, see :func:`.load_checkpoint_file`) into ``model``.

    ``spec_fields`` is the key-pattern -> spec-field table used to explain shape mismatches.
    Returns a :class:`LoadReport`; logs the never-run drop summary at INFO.
    """
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    plan = plan_load(
        expected,
        state_dict,
        spec_fields=spec_fields,
        never_run=never_run,
        allowed_missing=allowed_missing,
        target=type(model).__name__,
    )
    result = model.load_state_dict(plan.to_load, strict=False)
    leftover = [k for k in result.missing_keys if k not in plan.report.kept_from_model]
    if leftover or result.unexpected_keys:
        raise CheckpointMismatchError(
            f"load_state_dict disagreed with the plan: missing {leftover[:_EXAMPLES]}, unexpected "
            f"{result.unexpected_keys[:_EXAMPLES]}; expected none"
        )
    if plan.report.dropped:
        log.info("checkpoint: %s", plan.report.drop_summary())
    return plan.report


def _field_line(group: list[FieldDiagnosis]) -> str:
    first = group[0]
    count = f"; {len(group)} tensors" if len(group) > 1 else ""
    return (
        f"{first.field}: checkpoint has {first.checkpoint_value}, spec has {first.spec_value} "
        f"({first.key} {format_shape(first.checkpoint_shape)} vs {format_shape(first.model_shape)}{count})"
    )


def _more(items: list[str]) -> str:
    return f" (+{len(items) - _EXAMPLES} more)" if len(items) > _EXAMPLES else ""
