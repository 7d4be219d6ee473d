"""``depth_net train``: train or fine-tune the spec's network with PyTorch Lightning.

Flow: pick devices (:mod:`..training.devices`), build the network, load ``train.pretrained_model_path``
(any checkpoint kind) unless resuming, find the resume point (``train.resume_training_checkpoint_path``,
else the newest ``model_epoch_*_step_*.pth`` in the results folder) and hand it to
``trainer.fit(ckpt_path=...)``, which restores weights, optimiser, scheduler, epoch and step exactly.

Outcomes:

* SUCCESS with kpi ``train_loss``, ``val_loss``, ``val/*`` of the last epoch;
* a NaN/inf loss: :class:`TrainingDivergedError` (FAILURE, exit 4) - TAO reports PASS here;
* Ctrl-C or SIGTERM: interrupt checkpoint, then :class:`RunInterruptedError` (FAILURE, exit 130) whose
  message names the checkpoint and the command to resume. Lightning swallows ``KeyboardInterrupt``
  (and calls ``sys.exit(1)``): we detect ``trainer.interrupted`` and raise instead.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from skillbank.runtime.context import ActionContext, ActionResult
from skillbank.runtime.errors import ConfigurationError, FileSystemError, RunInterruptedError

log = logging.getLogger("depth_net")


def _quiet_lightning() -> None:
    """Keep the console to the progress bar: Lightning's info lines and known-harmless warnings off."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for text in (".*does not have many workers.*", ".*LeafSpec.*", ".*is deprecated.*",
                 ".*Checkpoint directory .* exists and is not empty.*", ".*sync_dist=True.*",
                 ".*You're resuming from a checkpoint that ended before the epoch ended.*",
                 ".*smaller than the logging interval.*"):
        warnings.filterwarnings("ignore", message=text)


def _resume_point(ctx: ActionContext) -> Path | None:
    cfg = ctx.spec.train
    if cfg.resume_training_checkpoint_path:
        path = Path(cfg.resume_training_checkpoint_path)
        if path.is_dir():
            from skillbank.runtime.training.checkpointing import find_resume_checkpoint

            found = find_resume_checkpoint(path)
            if found is None:
                raise FileSystemError(f"train.resume_training_checkpoint_path: no model_epoch_*_step_*.pth in {path}")
            return found
        if not path.is_file():
            raise FileSystemError(f"train.resume_training_checkpoint_path: file not found: {path}")
        return path
    from skillbank.runtime.training.checkpointing import find_resume_checkpoint

    return find_resume_checkpoint(ctx.results_dir)


def _check_resume_fits(model: Any, path: Path) -> None:
    """Fail in one line, naming the spec fields, when the resume checkpoint's tensors do not fit the
    spec's network (Lightning would raise a long size-mismatch RuntimeError mid-setup)."""
    from skillbank.runtime.checkpoints import CheckpointError, load_checkpoint_file, plan_load

    try:
        state_dict, meta = load_checkpoint_file(path)
        plan_load({k: tuple(v.shape) for k, v in model.state_dict().items()}, state_dict)
    except CheckpointError as exc:
        raise ConfigurationError(
            f"train: cannot resume from {path}: {exc}; train into another results_dir, or set "
            "train.resume_training_checkpoint_path to a checkpoint of this model") from None
    if "optimizer_states" not in (meta.extras or {}):  # train.checkpoint_weights_only wrote it
        raise ConfigurationError(
            f"train: cannot resume from {path}: it holds weights only (train.checkpoint_weights_only); start "
            "from it with train.pretrained_model_path in another results_dir")


def _resume_hint(ctx: ActionContext, path: Path | None) -> str:
    spec = str(ctx.spec_path) if ctx.spec_path else "SPEC.yaml"
    if path is None:
        return f"no checkpoint was written; rerun: depth_net train -e {shlex.quote(spec)}"
    return (f"checkpoint {path}; resume with: depth_net train -e {shlex.quote(spec)} "
            f"(it resumes from the newest checkpoint in {path.parent}) or "
            f"train.resume_training_checkpoint_path={shlex.quote(str(path))}")


def run(ctx: ActionContext) -> ActionResult:
    import lightning.pytorch as pl
    import torch

    from skillbank.runtime.training.callbacks import StatusReporter
    from skillbank.runtime.training.checkpointing import AtomicCheckpointIO, PeriodicCheckpoint
    from skillbank.runtime.training.devices import plan_training_devices
    from skillbank.runtime.training.module import DepthNetModule
    from skillbank.runtime.training.weights import build_model, load_weights

    _quiet_lightning()
    spec = ctx.spec
    cfg = spec.train
    results_dir = ctx.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(results_dir, os.W_OK):
        raise FileSystemError(f"train results_dir: {results_dir} is not writable")

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    plan = plan_training_devices(cfg)
    model = build_model(spec)
    if spec.wandb.enable:
        log.warning("wandb.enable: Weights & Biases logging is not in this build; metrics go to status.json "
                    "and lightning_logs/*/metrics.csv")
    if cfg.activation_checkpoint:
        log.warning("train.activation_checkpoint: not supported by this network build; ignored")

    resume = _resume_point(ctx)
    if resume is not None:
        log.info("resuming from %s", resume)
        _check_resume_fits(model, resume)
    elif cfg.pretrained_model_path:
        load_weights(model, cfg.pretrained_model_path, "train.pretrained_model_path")

    module = DepthNetModule(spec, model)
    checkpoints = PeriodicCheckpoint(results_dir, cfg.checkpoint_interval, cfg.checkpoint_interval_unit,
                                     weights_only=cfg.checkpoint_weights_only)
    status = StatusReporter(ctx.report)
    has_val = bool(spec.dataset.val_dataset.data_sources)
    interactive = sys.stderr.isatty() or os.environ.get("DEPTH_NET_PROGRESS") == "1"
    trainer = pl.Trainer(
        accelerator=plan.accelerator,
        devices=plan.devices,
        num_nodes=plan.num_nodes,
        strategy=plan.strategy,
        precision=plan.precision,
        max_epochs=cfg.num_epochs,
        gradient_clip_val=cfg.clip_grad_norm if cfg.clip_grad_norm > 0 else None,
        gradient_clip_algorithm="norm",
        check_val_every_n_epoch=cfg.validation_interval,
        limit_val_batches=None if has_val else 0,
        num_sanity_val_steps=0,
        log_every_n_steps=cfg.log_every_n_steps,
        logger=pl.loggers.CSVLogger(str(results_dir), name="lightning_logs") if not cfg.is_dry_run else False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=interactive,
        callbacks=[checkpoints, status],
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(results_dir),
        use_distributed_sampler=False,
        fast_dev_run=1 if cfg.is_dry_run else False,
        benchmark=plan.accelerator == "gpu",
    )
    params = sum(p.numel() for p in model.parameters())
    log.info("training %s (%.2fM parameters) on %s x%d, precision %s, %d epoch(s)", spec.model.model_type,
             params / 1e6, plan.accelerator, plan.world_size, plan.precision, cfg.num_epochs)

    sigint = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, ckpt_path=str(resume) if resume else None)
    except SystemExit as exc:  # Lightning turns KeyboardInterrupt into sys.exit(1)
        if trainer.interrupted:
            hint = _resume_hint(ctx, checkpoints.interrupt_path or checkpoints.last_saved)
            raise RunInterruptedError(f"train stopped by the user or a signal; {hint}") from None
        raise ConfigurationError(f"train: the trainer exited early (code {exc.code})") from None
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise ConfigurationError(
                "train: out of GPU memory; lower dataset.train_dataset.batch_size or augmentation.crop_size, "
                "or use train.precision bf16") from None
        raise
    finally:  # Lightning ignores SIGINT after an interrupt; give the process its handler back
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, sigint)
    if trainer.interrupted:
        raise RunInterruptedError(f"train stopped by the user or a signal; "
                                  f"{_resume_hint(ctx, checkpoints.interrupt_path or checkpoints.last_saved)}")

    kpi: dict[str, Any] = dict(status.last_kpi)
    done_epochs = trainer.current_epoch
    if cfg.is_dry_run:
        message = "Dry run finished: one train batch and one val batch ran"
    elif checkpoints.last_saved is not None:
        message = (f"Trained to epoch {done_epochs}/{cfg.num_epochs} (step {trainer.global_step}); "
                   f"checkpoint {checkpoints.last_saved.name}")
    else:
        message = f"Nothing to train: the resumed checkpoint is already at epoch {done_epochs}/{cfg.num_epochs}"
    if torch.cuda.is_available() and plan.accelerator == "gpu":
        kpi["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return ActionResult(message, kpi=kpi, outputs={"checkpoint": str(checkpoints.last_saved or "")})
