"""The LightningModule behind ``depth_net train``: one class for stereo and mono networks.

* ``on_train_batch_start``: torch's RNG reseeded from (seed, step, rank): resume is bit-exact.
* ``training_step``: forward in train mode, loss (:mod:`.loss`), NaN/inf guard. The guard's verdict is
  summed across ranks so every process stops together with :class:`TrainingDivergedError` (a single
  rank raising alone would hang the others in the next all-reduce).
* ``validation_step``: forward in test mode (``valid_iters``), ``val_loss`` = TAO's (stereo: smooth L1 of
  the final disparity over valid pixels, :func:`.loss.stereo_val_loss`) or the training loss (mono),
  plus per-image metrics (:mod:`runtime.metrics`) summed across ranks at the end of the epoch and
  logged as ``val/epe``, ``val/bp2``, ... (mono: ``val/abs_rel``, ``val/d1``, ...).
* ``configure_optimizers``: :mod:`.schedule`, stepped every optimiser step.
* ``train_dataloader`` / ``val_dataloader``: :mod:`runtime.data.splits` and :mod:`runtime.data.loaders`, with
  this process's rank and world size.

The network is ``self.model``, so checkpoint keys read ``model.<tao name>``; the checkpoint loader
strips that prefix.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import lightning.pytorch as pl
import torch

from skillbank.runtime.data.loaders import make_loader
from skillbank.runtime.data.splits import build_split_dataset
from skillbank.runtime.errors import TrainingDivergedError, concerning
from skillbank.runtime.metrics import (
    MONO_METRICS,
    STEREO_METRICS,
    MetricAverager,
    mono_depth_metrics,
    stereo_image_metrics,
)
from skillbank.runtime.training.loss import silog_loss, ssi_l1_loss, stereo_loss_fn, stereo_val_loss
from skillbank.runtime.training.schedule import build_optimizer, build_scheduler

log = logging.getLogger("depth_net")


def compile_unsupported_reason(model: torch.nn.Module, device: torch.device) -> str | None:
    """Why ``train.compile`` cannot apply here, or ``None`` when it can."""
    if not hasattr(model, "compile_regions"):
        return f"{type(model).__name__} has no compiled training path (FastFoundationStereo has)"
    if device.type != "cuda":
        # Inductor's CPU backend is slow to build and has corrupted channels-last gradients
        # (pytorch#191837): CPU runs are for tests and smoke runs, eager is the right tool there
        return f"the model is on {device.type}; compiled training is for CUDA devices"
    return None


class DepthNetModule(pl.LightningModule):
    """Train/validate the spec's network. ``model`` may be given (e.g. with pretrained weights loaded)."""

    #: the NaN guard lags one step on GPUs (no host wait per step); on the CPU nothing runs ahead, so
    #: it checks at once unless this is set (tests use it to exercise the lagged path)
    lag_guard_on_cpu = False

    def __init__(self, spec: Any, model: torch.nn.Module | None = None) -> None:
        super().__init__()
        from skillbank.runtime.training.weights import build_model

        self.spec = spec
        self.stereo = bool(spec.model.is_stereo)
        self.relative = spec.model.model_type == "RelativeDepthAnything"
        self.model = model if model is not None else build_model(spec)
        self.has_val = bool(spec.dataset.val_dataset.data_sources)
        self._val_metrics = MetricAverager(STEREO_METRICS if self.stereo else MONO_METRICS)
        self._train_set = None
        self._val_set = None
        self.last_val_epoch = -1  # the epoch whose validation produced the current val_* metrics
        self._stereo_loss = stereo_loss_fn(spec.model.train_iters, spec.dataset.max_disparity) if self.stereo else None
        self._graphed = None      # GraphedStereoLoss when train.cuda_graph applies (on_train_start)
        self._compiled = False    # train.compile applied (on_train_start)
        self._pending_loss: tuple[torch.Tensor, torch.cuda.Event | None, int] | None = None
        if spec.train.pad_channels:
            self._pad_channels()
        if spec.train.channels_last and hasattr(self.model, "to_channels_last"):
            self.model.to_channels_last()
        if self._multi_gpu_fsdp() and hasattr(self.model, "deferred_weight_grads"):
            # FSDP reshards the parameters between forward and backward; the deferred weight
            # gradients (runtime/networks/speed/deferred_weight_grads.py) are not exercised under it
            self.model.deferred_weight_grads = False

    # ------------------------------------------------------------------------------------------ data
    def setup(self, stage: str) -> None:
        if self._train_set is None:
            self._train_set = build_split_dataset(self.spec, "train_dataset", train=True)
        if self.has_val and self._val_set is None:
            self._val_set = build_split_dataset(self.spec, "val_dataset", train=False)

    def train_dataloader(self):
        with concerning("dataset.train_dataset"):  # a split smaller than one batch per process
            return make_loader(
                self._train_set, self.spec.dataset.train_dataset, train=True,
                rank=self.trainer.global_rank, world=self.trainer.world_size, seed=self.spec.train.seed,
            )

    def val_dataloader(self):
        if not self.has_val:
            return []
        return make_loader(
            self._val_set, self.spec.dataset.val_dataset, train=False,
            rank=self.trainer.global_rank, world=self.trainer.world_size,
        )

    # ------------------------------------------------------------------------------------ speed-ups
    def on_train_start(self) -> None:
        """Apply ``train.compile`` and ``train.cuda_graph`` now that the device and world size are known."""
        cfg = self.spec.train
        if cfg.compile and not self._compiled:
            reason = compile_unsupported_reason(self.model, self.device)
            if reason:
                log.warning("train.compile: %s; training eagerly", reason)
            else:
                from skillbank.runtime.compile_cache import prepare_compile_caches

                log.info("train.compile: compiled kernels cached in %s", prepare_compile_caches())
                self.model.compile_regions(training_only=True)
                if self.stereo:          # and the sequence loss (before a CUDA graph captures it)
                    self._stereo_loss = stereo_loss_fn(self.spec.model.train_iters, self.spec.dataset.max_disparity,
                                                       compiled=True)
                self._compiled = True
                log.info("train.compile: the encoder, one refinement iteration and the upsampling compile "
                         "during the first step (about 2-3 minutes on an H100/H200)")
        if cfg.cuda_graph and self._graphed is None:
            from skillbank.runtime.training.graphed import GraphedStereoLoss, graph_unsupported_reason

            reason = ("CUDA graphs are built for the stereo loss" if not self.stereo else
                      graph_unsupported_reason(self.device, self.trainer.world_size, cfg.precision))
            if reason:
                log.warning("train.cuda_graph: %s; running eagerly", reason)
                return
            self._graphed = GraphedStereoLoss(self.model, self._stereo_loss,
                                              autocast_dtype=torch.bfloat16 if cfg.precision == "bf16" else None)

    def _multi_gpu_fsdp(self) -> bool:
        cfg = self.spec.train
        return cfg.distributed_strategy == "fsdp" and max(cfg.num_gpus, len(cfg.gpu_ids)) * cfg.num_nodes > 1

    def _pad_channels(self) -> None:
        """``train.pad_channels``: train FFS at widths rounded up to multiples of 8 (exact; the
        checkpoints keep the original names and shapes, see :meth:`on_save_checkpoint`)."""
        from skillbank.runtime.networks.ffs.model import FastFoundationStereo
        from skillbank.runtime.networks.speed.channel_padding import pad_channels_

        if not isinstance(self.model, FastFoundationStereo):
            log.warning("train.pad_channels: %s has no padded widths (FastFoundationStereo has); training as is",
                        type(self.model).__name__)
            return
        if self._multi_gpu_fsdp():
            # FSDP gathers flattened, name-keyed state: the padding's index-keyed conversions do not apply
            log.warning("train.pad_channels: not with distributed_strategy fsdp (its sharded checkpoints bypass "
                        "the padding's conversions); training at the original widths")
            return
        pad_channels_(self.model, training=True)

    def _convert_optimizer_states(self, checkpoint: dict[str, Any], to_original: bool) -> None:
        """Optimiser moments of the padded trainable parameters between the padded shapes (the live
        optimiser) and the original ones (checkpoints). One param group in
        :func:`schedule.build_optimizer`'s order: state index ``i`` is the ``i``-th trainable parameter.
        Each converted state is a new dict: the packed state shares the live optimiser's."""
        from skillbank.runtime.networks.speed.channel_padding import pad_tensor, unpad_tensor

        maps = getattr(self.model, "padding_maps", None)
        if not maps:
            return
        trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        padded = [(i, maps[n], p) for i, (n, p) in enumerate(trainable) if n in maps]
        for opt_state in checkpoint.get("optimizer_states", []):
            for i, m, param in padded:
                if i not in opt_state["state"]:
                    continue
                source_shape = param.shape if to_original else m.original_shape
                opt_state["state"][i] = {
                    key: (unpad_tensor(v, m) if to_original else pad_tensor(v, m, torch.zeros_like(param)))
                    if isinstance(v, torch.Tensor) and v.shape == source_shape else v
                    for key, v in opt_state["state"][i].items()}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A channel-padded run saves optimiser moments at the original shapes too (the weights are
        unpadded by the model's state_dict hook), so any run can resume from its checkpoints."""
        self._convert_optimizer_states(checkpoint, to_original=True)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Pad a checkpoint's original-shape optimiser moments for a channel-padded run (the weights
        are padded by the model's load_state_dict hook)."""
        self._convert_optimizer_states(checkpoint, to_original=False)

    # ---------------------------------------------------------------------------------------- steps
    def _loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        if self.stereo:
            step = self._graphed if self._graphed is not None else partial(self._stereo_loss, self.model)
            return step(batch["left"], batch["right"], batch["disparity"], batch["valid"]), batch["left"].shape[0]
        pred = self.model(batch["image"])
        if self.relative:
            return ssi_l1_loss(pred, batch["target"], batch["valid"]), batch["image"].shape[0]
        return silog_loss(pred, batch["target"], batch["valid"]), batch["image"].shape[0]

    def _divergence(self, loss: torch.Tensor) -> torch.Tensor:
        """``[non-finite count over the processes, this process's loss]``, where ``loss`` lives."""
        bad = (~torch.isfinite(loss.detach())).float().reshape(())
        if self.trainer.world_size > 1:
            bad = self.trainer.strategy.reduce(bad, reduce_op="sum")
        return torch.stack([bad, loss.detach().float().reshape(())])

    def _raise_if_diverged(self, divergence: torch.Tensor, step: int) -> None:
        bad, value = divergence.tolist()
        if bad > 0:
            raise TrainingDivergedError(
                f"train loss is {value} at epoch {self.current_epoch}, step {step}; "
                "the run stopped (lower train.optim.lr, keep train.clip_grad_norm > 0, or use precision fp32/bf16)"
            )

    def _guard(self, loss: torch.Tensor, step: int) -> None:
        self._raise_if_diverged(self._divergence(loss).cpu(), step)

    def _guard_lagged(self, loss: torch.Tensor) -> None:
        """NaN/inf guard. On a GPU the check reads the PREVIOUS step's loss, copied to pinned host
        memory behind an event: waiting for that event waits for that step only, never for the step
        just queued (a plain ``.item()`` would wait for the whole stream). The last step is checked at
        the epoch's end and before any checkpoint is written (:meth:`check_pending_loss`)."""
        if loss.device.type == "cpu" and not self.lag_guard_on_cpu:
            self._guard(loss, self.global_step)
            return
        divergence, copied = self._divergence(loss), None
        if divergence.is_cuda:
            host = torch.empty(2, pin_memory=True)
            host.copy_(divergence, non_blocking=True)
            divergence, copied = host, torch.cuda.Event()
            copied.record()
        pending, self._pending_loss = self._pending_loss, (divergence, copied, self.global_step)
        if pending is not None:
            self._check(*pending)

    def _check(self, divergence: torch.Tensor, copied: torch.cuda.Event | None, step: int) -> None:
        if copied is not None:
            copied.synchronize()
        self._raise_if_diverged(divergence, step)

    def check_pending_loss(self) -> None:
        """Run the lagged NaN/inf check now (the epoch's end, and before every checkpoint save, so a
        diverged step never reaches a checkpoint)."""
        pending, self._pending_loss = self._pending_loss, None
        if pending is not None:
            self._check(*pending)

    def on_train_epoch_end(self) -> None:
        self.check_pending_loss()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Random ops in the network (dropout in the disparity transformer) draw from torch's global RNG.
        # Reseeding it from (seed, step, rank) makes them a function of the step, so a resumed run
        # draws exactly what an uninterrupted one would (Lightning does not restore the RNG state).
        rank, world = self.trainer.global_rank, self.trainer.world_size
        torch.manual_seed((self.spec.train.seed * 1_000_003 + self.global_step * world + rank) % 2**63)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, size = self._loss(batch)
        self._guard_lagged(loss)
        self.log("train_loss", loss.detach(), on_step=True, on_epoch=True, sync_dist=True, batch_size=size,
                 prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_metrics = MetricAverager(self._val_metrics.names)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if self.stereo:
            pred = self.model(batch["left"], batch["right"], iters=self.spec.model.valid_iters, test_mode=True)
            gt, valid = batch["disparity"], batch["valid"]
            for i, (h, w) in enumerate(batch["size"]):
                self._val_metrics.add(stereo_image_metrics(pred[i, :, :h, :w], gt[i, :, :h, :w], valid[i, :, :h, :w]))
            val_loss = stereo_val_loss(pred, gt, valid, max_disparity=self.spec.dataset.max_disparity)
            self.log("val_loss", val_loss, on_epoch=True, sync_dist=True, batch_size=pred.shape[0])
            return
        pred = self.model(batch["image"])
        loss = ssi_l1_loss(pred, batch["target"], batch["valid"]) if self.relative else silog_loss(
            pred, batch["target"], batch["valid"])
        self.log("val_loss", loss, on_epoch=True, sync_dist=True, batch_size=pred.shape[0])
        for i, (h, w) in enumerate(batch["size"]):
            self._val_metrics.add(mono_depth_metrics(pred[i, :, :h, :w], batch["target"][i, :, :h, :w],
                                                     batch["depth"][i, :, :h, :w], batch["valid"][i, :, :h, :w],
                                                     relative=self.relative))

    def on_validation_epoch_end(self) -> None:
        self.last_val_epoch = self.current_epoch
        state = self._val_metrics.state().to(self.device)
        if self.trainer.world_size > 1:
            state = self.trainer.strategy.reduce(state, reduce_op="sum")
        self._val_metrics.load_state(state)
        for name, value in self._val_metrics.result("val/").items():
            self.log(name, value, on_epoch=True, sync_dist=False, rank_zero_only=False)
        self.log("val/images", float(self._val_metrics.images), on_epoch=True, sync_dist=False)

    def on_train_end(self) -> None:
        # Every rank logs a checksum of its weights at DEBUG level: DDP keeps them bit-identical.
        if log.isEnabledFor(logging.DEBUG):
            with torch.no_grad():
                total = sum(float(p.double().abs().sum()) for p in self.model.parameters())
            log.debug("rank %d weights checksum %.17g", self.trainer.global_rank, total)

    # ------------------------------------------------------------------------------------ optimiser
    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """Lightning's mixed-precision plugin refuses to clip for an optimiser that may unscale the
        gradients inside its step (the fused ones). Ours never does: it is fused only where no
        GradScaler runs (:meth:`_fused_optimizer`), so its gradients are clipped here, by norm
        (``train.clip_grad_norm``), as the plugin would."""
        if gradient_clip_val and getattr(optimizer, "_step_supports_amp_scaling", False):
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)
            return
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def _fused_optimizer(self) -> bool:
        """The fused optimiser on a GPU, unless fp16's GradScaler scales the gradients."""
        return self.device.type == "cuda" and self.spec.train.precision != "fp16"

    def configure_optimizers(self):
        optim_cfg = self.spec.train.optim
        optimizer = build_optimizer(self.model.parameters(), optim_cfg, fused=self._fused_optimizer())
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = build_scheduler(optimizer, optim_cfg, total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

