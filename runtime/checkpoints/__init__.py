"""Checkpoint loading, saving and resolution for every depth_net network.

Public API:

* :func:`load_checkpoint_file` -> ``(state_dict, meta)`` for our / TAO Lightning checkpoints, plain
  state_dicts, ``{"model": state_dict}`` dicts and upstream's whole pickled ``nn.Module`` (read without
  upstream's code through :class:`RestrictedUnpickler`), keys normalised to TAO names;
* :func:`load_into` -> :class:`LoadReport`: strict load that drops only FFS's never-run tensors and
  explains shape mismatches by spec field (:data:`DEFAULT_FIELD_RULES`);
* :func:`save_checkpoint_atomic` and :func:`resolve_checkpoint` for the trainer and the actions.

The actions' one call (build the spec's network, resolve + read + ``load_into``, errors naming the spec
key) is :mod:`skillbank.runtime.training.weights`.

See README.md beside this file for the checkpoint kinds and the unpickler's security stance.
"""

from skillbank.runtime.checkpoints.errors import (
    CheckpointError,
    CheckpointFormatError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    UnsafeCheckpointError,
)
from skillbank.runtime.checkpoints.field_rules import (
    DEFAULT_FIELD_RULES,
    FFS_FIELD_RULES,
    FS_FIELD_RULES,
    VIT_FIELD_RULES,
    FieldDiagnosis,
    FieldRule,
    diagnose,
)
from skillbank.runtime.checkpoints.load_into import LoadPlan, LoadReport, load_into, plan_load
from skillbank.runtime.checkpoints.loading import CheckpointKind, CheckpointMeta, load_checkpoint_file
from skillbank.runtime.checkpoints.module_tree import module_state_dict
from skillbank.runtime.checkpoints.never_run import NEVER_RUN_MODULES, DroppedModule
from skillbank.runtime.checkpoints.renames import (
    RENAME_RULES,
    normalise_keys,
    strip_wrapper_prefixes,
    upstream_to_tao_key,
)
from skillbank.runtime.checkpoints.resolve import (
    LATEST_NAME,
    checkpoint_name,
    list_epoch_step_checkpoints,
    resolve_checkpoint,
)
from skillbank.runtime.checkpoints.restricted_unpickler import (
    Placeholder,
    RestrictedUnpickler,
    restricted_pickle_module,
)
from skillbank.runtime.checkpoints.saving import save_checkpoint_atomic

__all__ = [
    "DEFAULT_FIELD_RULES",
    "FFS_FIELD_RULES",
    "FS_FIELD_RULES",
    "LATEST_NAME",
    "NEVER_RUN_MODULES",
    "RENAME_RULES",
    "VIT_FIELD_RULES",
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointKind",
    "CheckpointMeta",
    "CheckpointMismatchError",
    "CheckpointNotFoundError",
    "DroppedModule",
    "FieldDiagnosis",
    "FieldRule",
    "LoadPlan",
    "LoadReport",
    "Placeholder",
    "RestrictedUnpickler",
    "UnsafeCheckpointError",
    "checkpoint_name",
    "diagnose",
    "list_epoch_step_checkpoints",
    "load_checkpoint_file",
    "load_into",
    "module_state_dict",
    "normalise_keys",
    "plan_load",
    "resolve_checkpoint",
    "restricted_pickle_module",
    "save_checkpoint_atomic",
    "strip_wrapper_prefixes",
    "upstream_to_tao_key",
]
