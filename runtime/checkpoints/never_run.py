"""Tensors that FFS checkpoints carry but FFS never uses.

TAO's FastFoundationStereo inherits modules from the FoundationStereo teacher that its forward never
calls: ``context_zqr_convs`` (442,752 parameters) and nine hourglass leftovers under ``cost_agg``
(2,611,564 parameters; docs/networks.md "Tensors FFS never runs", checked against ``ffs_bp2_state_dict.tsv``).
TAO checkpoints and the upstream pickle still hold their (untrained) weights. Our FFS does not build
them, so the loader drops exactly these keys (and only when the target network lacks them: the FS
teacher does run them and loads them normally).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

NEVER_RUN_MODULES: tuple[str, ...] = (
    "context_zqr_convs",
    "cost_agg.conv3_up",
    "cost_agg.conv2_up",
    "cost_agg.conv_out",
    "cost_agg.agg_0",
    "cost_agg.agg_1",
    "cost_agg.atts.cost_vol_disp",
    "cost_agg.conv_patch",
    "cost_agg.feature_att_up_16",
    "cost_agg.feature_att_up_8",
)

# Buffer names of norm layers: counted as tensors, not as parameters, in the summary.
BUFFER_LEAF_NAMES: frozenset[str] = frozenset({"running_mean", "running_var", "num_batches_tracked"})


def owner_of(key: str, modules: Iterable[str] = NEVER_RUN_MODULES) -> str | None:
    """The never-run module that owns ``key`` (``cost_agg.agg_0.1.conv1.0.weight`` -> ``cost_agg.agg_0``)."""
    for module in modules:
        if key.startswith(module + "."):
            return module
    return None


def is_parameter_key(key: str) -> bool:
    """Heuristic for a bare state_dict: everything except norm running statistics is a parameter."""
    return key.rsplit(".", 1)[-1] not in BUFFER_LEAF_NAMES


@dataclass(frozen=True)
class DroppedModule:
    """Per never-run module: how many tensors were dropped and how many parameters they hold."""

    module: str
    tensors: int
    parameters: int


def never_run_keys(
    state_dict: Mapping[str, torch.Tensor],
    model_keys: Iterable[str],
    modules: Iterable[str] = NEVER_RUN_MODULES,
) -> list[str]:
    """Keys of ``state_dict`` owned by a never-run module and absent from the model, in file order."""
    wanted = set(model_keys)
    modules = tuple(modules)
    return [k for k in state_dict if k not in wanted and owner_of(k, modules) is not None]


def summarise_dropped(
    state_dict: Mapping[str, torch.Tensor], keys: Iterable[str], modules: Iterable[str] = NEVER_RUN_MODULES
) -> list[DroppedModule]:
    """Group dropped keys by owning module (in ``modules`` order) with tensor and parameter counts."""
    modules = tuple(modules)
    tensors: dict[str, int] = {}
    params: dict[str, int] = {}
    for key in keys:
        owner = owner_of(key, modules)
        if owner is None:
            continue
        tensors[owner] = tensors.get(owner, 0) + 1
        if is_parameter_key(key):
            params[owner] = params.get(owner, 0) + state_dict[key].numel()
    return [DroppedModule(m, tensors[m], params.get(m, 0)) for m in modules if m in tensors]
