"""Checkpoints of a training run: when, where, how (atomically) and the resume point.

* Files: ``model_epoch_{epoch:03d}_step_{step:05d}.pth`` (epoch = Lightning's 0-based epoch index, as
  TAO names them; step = optimiser steps done) plus ``dn_model_latest.pth``, the newest one. Each is a
  Lightning checkpoint dict (``state_dict`` with ``model.`` keys, ``optimizer_states``,
  ``lr_schedulers``, ``epoch``, ``global_step``, loop state) that ``trainer.fit(ckpt_path=...)`` resumes
  from exactly (``train.checkpoint_weights_only``: the weights alone, about a third of the size, which
  cannot be resumed from; the interrupt checkpoint always keeps the full state).
* Atomic: :class:`AtomicCheckpointIO` writes every file through
  :func:`runtime.checkpoints.save_checkpoint_atomic` (temp file in the same folder, fsync,
  ``os.replace``, folder fsync); ``dn_model_latest.pth`` is then replaced by a hard link (or copy) of the
  new file made under a temp name and ``os.replace``d in (:func:`skillbank.atomic.atomic_copy`). A crash,
  even ``kill -9``, mid-save leaves at worst a ``.*.tmp`` file; the named checkpoints are always complete.
* Only global rank 0 writes (Lightning's strategies call the CheckpointIO on rank 0 only), so a DDP run
  checkpoints once.
* :class:`PeriodicCheckpoint` saves every ``checkpoint_interval`` epochs (at epoch end, after
  validation) or optimiser steps, and always at the last epoch. On Ctrl-C / SIGTERM
  (``KeyboardInterrupt``) it writes an interrupt checkpoint from rank 0 (no collective call, so it
  cannot hang) and remembers its path for the resume hint.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.plugins.io import TorchCheckpointIO

from skillbank.atomic import atomic_copy
from skillbank.runtime.checkpoints import (
    LATEST_NAME,
    checkpoint_name,
    list_epoch_step_checkpoints,
    save_checkpoint_atomic,
)

log = logging.getLogger("depth_net")

__all__ = ["AtomicCheckpointIO", "PeriodicCheckpoint", "update_latest", "find_resume_checkpoint"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO whose saves are atomic (temp + fsync + os.replace)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint_atomic(checkpoint, path)


def update_latest(source: Path) -> Path:
    """Point ``dn_model_latest.pth`` beside ``source`` at it, atomically (hard link, else copy)."""
    return atomic_copy(source, source.parent / LATEST_NAME, link=True)


def find_resume_checkpoint(results_dir: Path) -> Path | None:
    """The newest epoch/step checkpoint in ``results_dir`` (highest epoch, then step), if any."""
    if not results_dir.is_dir():
        return None
    found = list_epoch_step_checkpoints(results_dir)
    return found[-1][2] if found else None


class PeriodicCheckpoint(pl.Callback):
    """Epoch- or step-interval checkpoints, the final one, and an interrupt checkpoint."""

    def __init__(self, dirpath: Path, interval: int, unit: str, weights_only: bool = False) -> None:
        self.dirpath = Path(dirpath)
        self.weights_only = weights_only
        self.interval = max(int(interval), 1)
        self.unit = unit
        self.last_saved: Path | None = None
        self.interrupt_path: Path | None = None
        self._last_step_saved = -1

    def _path(self, trainer: pl.Trainer) -> Path:
        return self.dirpath / checkpoint_name(trainer.current_epoch, trainer.global_step)

    def save(self, trainer: pl.Trainer) -> Path:
        """Save now (all ranks call this; rank 0 writes) and move ``dn_model_latest.pth``. The
        module's lagged NaN check runs first: a diverged step raises instead of being saved."""
        check = getattr(trainer.lightning_module, "check_pending_loss", None)
        if check is not None:
            check()
        path = self._path(trainer)
        trainer.save_checkpoint(path, weights_only=self.weights_only)
        if trainer.is_global_zero:
            update_latest(path)
        self.last_saved = path
        self._last_step_saved = trainer.global_step
        return path

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.unit == "step" and not trainer.sanity_checking and not trainer.fast_dev_run:
            step = trainer.global_step
            if step > 0 and step % self.interval == 0 and step != self._last_step_saved:
                self.save(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.fast_dev_run:
            return
        last = trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        due = self.unit == "epoch" and (trainer.current_epoch + 1) % self.interval == 0
        if (due or last) and trainer.global_step != self._last_step_saved:
            self.save(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt) or trainer.fast_dev_run:
            return
        if not trainer.is_global_zero:
            return
        if trainer.world_size > 1 and "fsdp" in type(trainer.strategy).__name__.lower():
            # a sharded state needs every rank to gather it: not safe from an interrupt on rank 0 alone
            log.warning("interrupt: no interrupt checkpoint under FSDP; resume from %s", self.last_saved)
            return
        try:
            checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
            path = self._path(trainer)
            save_checkpoint_atomic(checkpoint, path)
            update_latest(path)
            self.interrupt_path = path
            log.info("interrupt checkpoint: %s", path)
        except Exception as exc:  # the interrupt must still end the run
            log.error("could not write the interrupt checkpoint: %s", exc)
