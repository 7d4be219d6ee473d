"""Crash-safe checkpoint writing.

``torch.save`` straight onto ``model_epoch_..._step_....pth`` or ``dn_model_latest.pth`` leaves a
truncated file if the process dies mid-write (out of disk, pre-emption, Ctrl-C), and a truncated
``dn_model_latest.pth`` is worse than an old one. :func:`save_checkpoint_atomic` writes to a temporary
file in the same folder (so the final rename never crosses file systems), flushes and ``fsync``s it,
then ``os.replace``s it over the target (atomic on POSIX) and ``fsync``s the folder so the rename
itself survives a power cut. On any error the temporary file is removed and the old target is intact.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError


def save_checkpoint_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; returns the final path."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise CheckpointError(
            f"cannot save checkpoint {path}: folder {folder} does not exist; expected an existing folder"
        )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_folder(folder)
    return path


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. platforms that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
