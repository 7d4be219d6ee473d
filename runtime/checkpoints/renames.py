"""Checkpoint key normalisation: wrapper prefixes and upstream -> TAO names.

Two steps, applied to every key of every checkpoint kind:

1. :func:`strip_wrapper_prefixes` removes one leading ``model.`` (a LightningModule's ``self.model``)
   and then one leading ``module.`` (DataParallel / DDP).
2. :func:`upstream_to_tao_key` applies :data:`RENAME_RULES` in order. They turn the names of upstream
   Fast-FoundationStereo's pickle (timm EdgeNeXt layout, ``nn.Sequential`` wrappers, ``bn`` / ``IN``
   norms) into the names TAO's implementation (and ours) uses; see docs/networks.md, "Upstream
   checkpoint names", and the ``upstream_pickle_key_inferred`` column of
   ``ffs_bp2_state_dict.tsv``.

Each rule is anchored so that it is a no-op on names that are already TAO names (renaming twice changes
nothing) and never touches the DINOv2 ViT of FoundationStereo / DepthAnythingV2, whose ``mlp.fc1`` /
``mlp.fc2`` names are correct as they are: the EdgeNeXt block renames apply only under
``feature.stages.`` and ``update_block.disp_head.``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from skillbank.runtime.checkpoints.errors import CheckpointError

WRAPPER_PREFIXES: tuple[str, ...] = ("model.", "module.")

# Keys holding EdgeNeXt blocks (timm names conv_dw / mlp.fc1 / mlp.fc2 upstream).
_EDGENEXT_SCOPE = r"^(?:feature\.stages\.|update_block\.disp_head\.)"


@dataclass(frozen=True)
class RenameRule:
    """One regex substitution on a key; ``scope`` (a regex) must match the key for it to apply."""

    pattern: str
    replacement: str
    scope: str | None = None

    def apply(self, key: str) -> str:
        if self.scope is not None and not re.search(self.scope, key):
            return key
        return re.sub(self.pattern, self.replacement, key)


# Order matters only where two rules could touch the same text; with these anchors none does, but the
# structural (prefix) rules run first so the block-level rules see final module paths.
RENAME_RULES: tuple[RenameRule, ...] = (
    RenameRule(r"^cost_agg\.atts\.4\.", "cost_agg.atts.cost_vol_disp."),
    RenameRule(r"^corr_feature_att\.layers\.", "corr_feature_att."),
    RenameRule(r"^classifier\.layers\.", "classifier."),
    RenameRule(r"^feature\.stem\.", "feature.downsample_layers.0."),
    RenameRule(r"^feature\.stages\.([123])\.downsample\.", r"feature.downsample_layers.\1."),
    RenameRule(r"^feature\.stages\.(\d+)\.blocks\.", r"feature.stages.\1."),
    RenameRule(r"\.conv_dw\.", ".dwconv.", scope=_EDGENEXT_SCOPE),
    RenameRule(r"\.mlp\.fc1\.", ".pwconv1.", scope=_EDGENEXT_SCOPE),
    RenameRule(r"\.mlp\.fc2\.", ".pwconv2.", scope=_EDGENEXT_SCOPE),
    RenameRule(r"\.(?:bn|IN)\.", ".norm."),
)


def strip_wrapper_prefixes(key: str, prefixes: tuple[str, ...] = WRAPPER_PREFIXES) -> str:
    """Remove each prefix in turn if the key starts with it (``model.module.x`` -> ``x``)."""
    for prefix in prefixes:
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def upstream_to_tao_key(key: str) -> str:
    """Map one upstream FFS/FS key (already prefix-stripped) to its TAO name."""
    for rule in RENAME_RULES:
        key = rule.apply(key)
    return key


def normalise_keys(
    state_dict: Mapping[str, torch.Tensor],
    *,
    prefixes: tuple[str, ...] = WRAPPER_PREFIXES,
    rename: bool = True,
) -> tuple[OrderedDict[str, torch.Tensor], int]:
    """Strip wrapper prefixes and (if ``rename``) apply the upstream renames to every key.

    Returns the new dict (original order) and how many keys changed. Two keys landing on the same name
    is an error: it means the file mixes two naming schemes.
    """
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    origin: dict[str, str] = {}
    changed = 0
    for key, value in state_dict.items():
        new = strip_wrapper_prefixes(key, prefixes)
        if rename:
            new = upstream_to_tao_key(new)
        if new in out:
            raise CheckpointError(
                f"checkpoint keys {origin[new]!r} and {key!r} both map to {new!r}; expected one naming scheme"
            )
        out[new] = value
        origin[new] = key
        changed += new != key
    return out, changed
