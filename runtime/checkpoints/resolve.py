"""Pick the checkpoint file a user meant: an exact epoch/step file, or ``dn_model_latest.pth`` on request.

The trainer writes ``model_epoch_{epoch:03d}_step_{step:05d}.pth`` files plus ``dn_model_latest.pth``
(a copy of the newest); the name rule and its ordering live in :mod:`skillbank.checkpoint_names`, shared
with the skill bank. Policy: resolve exact epoch/step files; use ``dn_model_latest.pth`` only when
"latest" is asked, because a later run into the same folder silently changes what it holds.

* a file path is returned as is (it must exist);
* a folder: ``prefer="exact"`` returns the epoch/step file with the highest (epoch, step), or the one
  matching ``epoch`` / ``step`` when given; ``prefer="latest"`` returns ``dn_model_latest.pth`` when
  present, else falls back to the newest epoch/step file;
* a results root without checkpoints but with a ``train/`` subfolder is searched there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from skillbank.checkpoint_names import EPOCH_STEP_RE, LATEST_NAME, checkpoint_name, list_epoch_step_checkpoints
from skillbank.runtime.checkpoints.errors import CheckpointError, CheckpointNotFoundError

__all__ = ["EPOCH_STEP_RE", "LATEST_NAME", "checkpoint_name", "list_epoch_step_checkpoints", "resolve_checkpoint"]


def resolve_checkpoint(
    path_or_dir: str | Path,
    prefer: Literal["exact", "latest"] = "exact",
    *,
    epoch: int | None = None,
    step: int | None = None,
) -> Path:
    """The checkpoint file for a path or a results folder (see the module docstring)."""
    if prefer not in ("exact", "latest"):
        raise CheckpointError(f"prefer={prefer!r} is not supported; expected 'exact' or 'latest'")
    path = Path(path_or_dir)
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointNotFoundError(
            f"checkpoint path does not exist: {path} (expected a .pth file or a train results folder)"
        )
    folder = _checkpoint_folder(path)
    candidates = list_epoch_step_checkpoints(folder)
    latest = folder / LATEST_NAME
    if prefer == "latest" and latest.is_file() and epoch is None and step is None:
        return latest
    if epoch is not None or step is not None:
        chosen = [c for c in candidates if (epoch is None or c[0] == epoch) and (step is None or c[1] == step)]
        if not chosen:
            have = ", ".join(p.name for _, _, p in candidates) or "none"
            raise CheckpointNotFoundError(
                f"no checkpoint for epoch={epoch} step={step} in {folder}; found: {have}"
            )
        return chosen[-1][2]
    if candidates:
        return candidates[-1][2]
    hint = "" if prefer == "latest" or not latest.is_file() else f" ({LATEST_NAME} exists: ask for prefer='latest')"
    raise CheckpointNotFoundError(
        f"no checkpoint in folder {folder}: expected model_epoch_EEE_step_SSSSS.pth files{hint}"
    )


def _checkpoint_folder(path: Path) -> Path:
    """``path`` itself if it holds checkpoints, else its ``train/`` subfolder when that does."""
    def has_any(folder: Path) -> bool:
        return (folder / LATEST_NAME).is_file() or bool(list_epoch_step_checkpoints(folder))

    if not has_any(path) and (path / "train").is_dir() and has_any(path / "train"):
        return path / "train"
    return path
