"""status.json RUNNING lines of a training run: one per epoch, honest numbers only.

Each line (rank 0 only; the Reporter's StatusLogger is disabled on other ranks) carries
``kpi``: ``train_loss`` (epoch mean, reduced across ranks), ``val_loss`` and ``val/*`` metrics only
when validation ran this epoch (``validation_interval``), ``train_samples_per_s`` (steady state, below),
``startup_s`` (first epoch only: seconds from the start of training to where the steady clock starts, the end
of batch ``STEADY_AFTER`` + 1: data workers, compilation and CUDA-graph capture included),
and ``categorical``: ``epoch`` (1-based count of finished epochs), ``max_epoch``, ``step`` (optimiser
steps), ``time_per_epoch`` and ``eta`` (h:mm:ss).

``train_samples_per_s`` is the epoch's training samples per second across all ranks once it runs:
from the end of its ``STEADY_AFTER``-th batch to the end of its last (host clock), so the epoch's
start-up (data workers, the first step's compilation and CUDA-graph capture) and its end (validation,
checkpoints) stay out; ``time_per_epoch`` has them all. The host waits for the previous step to
finish (the lagged NaN guard), so its clock runs at most one step ahead of the GPU's. Absent for an
epoch of ``STEADY_AFTER`` + 1 batches or fewer.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Any

import lightning.pytorch as pl

from skillbank.runtime.context import Reporter


def hms(seconds: float) -> str:
    """Seconds -> 'h:mm:ss'."""
    return str(timedelta(seconds=round(max(seconds, 0.0))))


def _scalar(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number


#: batches of each epoch left out of its ``train_samples_per_s`` (start-up)
STEADY_AFTER = 3


def _batch_size(batch: Any) -> int:
    """Samples in a training batch (a dict of tensors, or a tensor / sequence of them)."""
    values = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, list | tuple) else [batch]
    for value in values:
        shape = getattr(value, "shape", None)
        if shape:
            return int(shape[0])
    return 0


class StatusReporter(pl.Callback):
    """Writes the per-epoch RUNNING line and keeps the last epoch's numbers for the SUCCESS kpi."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self._start = time.monotonic()
        self._epoch_times: list[float] = []
        self._batch_ends: list[tuple[float, int]] = []      # (host time, samples) per batch of the epoch
        self.last_kpi: dict[str, float] = {}
        self._train_start: float | None = None
        self.startup_s: float | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._train_start = time.monotonic()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.monotonic()
        self._batch_ends = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._batch_ends.append((time.monotonic(), _batch_size(batch) * trainer.world_size))
        if self.startup_s is None and self._train_start is not None and len(self._batch_ends) == STEADY_AFTER + 1:
            self.startup_s = self._batch_ends[-1][0] - self._train_start

    def steady_samples_per_s(self) -> float | None:
        """This epoch's samples per second after its first ``STEADY_AFTER`` batches (module docstring)."""
        ends = self._batch_ends
        if len(ends) <= STEADY_AFTER + 1:
            return None
        span = ends[-1][0] - ends[STEADY_AFTER][0]
        samples = sum(n for _, n in ends[STEADY_AFTER + 1:])
        return samples / span if span > 0 and samples else None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        elapsed = time.monotonic() - self._start
        self._epoch_times.append(elapsed)
        metrics = trainer.callback_metrics
        # val_* metrics only when validation ran THIS epoch (callback_metrics keeps older values)
        validated = getattr(pl_module, "last_val_epoch", -1) == trainer.current_epoch
        kpi: dict[str, float] = {}
        for name in ("train_loss_epoch", "train_loss") + (("val_loss",) if validated else ()):
            value = _scalar(metrics.get(name))
            key = "train_loss" if name.startswith("train_loss") else name
            if value is not None and key not in kpi:
                kpi[key] = value
        for name, value in metrics.items():
            if validated and name.startswith("val/"):
                number = _scalar(value)
                if number is not None:
                    kpi[name] = number
        rate = self.steady_samples_per_s()
        if rate is not None:
            kpi["train_samples_per_s"] = round(rate, 3)
        if self.startup_s is not None and not self._epoch_times[:-1]:
            kpi["startup_s"] = round(self.startup_s, 2)
        self.last_kpi = kpi
        done = trainer.current_epoch + 1
        max_epoch = int(trainer.max_epochs or done)
        per_epoch = sum(self._epoch_times) / len(self._epoch_times)
        parts = [f"{k} {v:.4g}" for k, v in kpi.items() if k in ("train_loss", "val_loss", "val/epe")]
        self.reporter.running(
            f"Epoch {done}/{max_epoch} done" + (": " + ", ".join(parts) if parts else ""),
            kpi={k: v for k, v in kpi.items() if math.isfinite(v)} | {k: str(v) for k, v in kpi.items()
                                                                         if not math.isfinite(v)},
            categorical={
                "epoch": done,
                "max_epoch": max_epoch,
                "step": int(trainer.global_step),
                "time_per_epoch": hms(elapsed),
                "eta": hms(per_epoch * max(max_epoch - done, 0)),
            },
        )
