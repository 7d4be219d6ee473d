"""Checkpoint file names of a training run, in one torch-free home for the skill bank and the runtime.

The trainer writes ``model_epoch_{epoch:03d}_step_{step:05d}.pth`` (epoch: 0-based epoch index, step:
optimiser steps done; at least 3 and 5 digits, more once the numbers outgrow them) and
``dn_model_latest.pth``, a copy of the newest one. The newest checkpoint is the one with the highest
(epoch, step) compared as numbers, never as text. ``dn_model_latest.pth`` is used only when "latest" is
asked for, because a later run into the same folder silently changes what it holds.
"""

from __future__ import annotations

import re
from pathlib import Path

LATEST_NAME = "dn_model_latest.pth"
EPOCH_STEP_RE = re.compile(r"^model_epoch_(\d{3,})_step_(\d{5,})\.pth$")


def checkpoint_name(epoch: int, step: int) -> str:
    """File name the trainer uses for a checkpoint at (epoch, step)."""
    return f"model_epoch_{epoch:03d}_step_{step:05d}.pth"


def parse_checkpoint_name(name: str) -> tuple[int, int] | None:
    """(epoch, step) of an epoch/step checkpoint file name, else None."""
    match = EPOCH_STEP_RE.match(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def list_epoch_step_checkpoints(folder: str | Path) -> list[tuple[int, int, Path]]:
    """(epoch, step, path) of every epoch/step checkpoint file in ``folder``, oldest first."""
    found = []
    for entry in Path(folder).iterdir():
        key = parse_checkpoint_name(entry.name)
        if key is not None and entry.is_file():
            found.append((key[0], key[1], entry))
    return sorted(found, key=lambda item: (item[0], item[1]))


def newest_checkpoint(folder: str | Path) -> tuple[int, int, Path] | None:
    """The epoch/step checkpoint with the highest (epoch, step) in ``folder``, if any."""
    found = list_epoch_step_checkpoints(folder) if Path(folder).is_dir() else []
    return found[-1] if found else None
