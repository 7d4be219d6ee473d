"""Crash-safe checkpoint writing.

``torch.save`` straight onto ``model_epoch_..._step_....pth`` or ``dn_model_latest.pth`` leaves a
truncated file if the process dies mid-write (out of disk, pre-emption, Ctrl-C), and a truncated
``dn_model_latest.pth`` is worse than an old one. :func:`save_checkpoint_atomic` saves through
:func:`skillbank.atomic.atomic_open`: a temporary file in the same folder, flushed and ``fsync``ed, then
``os.replace``d over the target and the folder ``fsync``ed. On any error the temporary file is removed
and the old target is intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from skillbank.atomic import atomic_open
from skillbank.runtime.checkpoints.errors import CheckpointError


def save_checkpoint_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; returns the final path."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise CheckpointError(
            f"cannot save checkpoint {path}: folder {folder} does not exist; expected an existing folder"
        )
    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)
    return path
