"""One call for the actions: resolve a checkpoint path, read it, load it into a network."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from torch import nn

from skillbank.runtime.checkpoints.load_into import LoadReport, load_into
from skillbank.runtime.checkpoints.loading import CheckpointMeta, load_checkpoint_file
from skillbank.runtime.checkpoints.resolve import resolve_checkpoint


def load_weights(
    model: nn.Module,
    path_or_dir: str | Path,
    *,
    prefer: Literal["exact", "latest"] = "exact",
) -> tuple[LoadReport, CheckpointMeta]:
    """``resolve_checkpoint`` + ``load_checkpoint_file`` + ``load_into``; returns the report and meta."""
    path = resolve_checkpoint(path_or_dir, prefer)
    state_dict, meta = load_checkpoint_file(path)
    return load_into(model, state_dict), meta
