"""``train`` section: loop, checkpoints, precision, devices and the optimiser."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from skillbank.specs.base import SpecSection
from skillbank.specs.fields import spec_field

SCHEDULERS = ["MultiStepLR", "StepLR", "LambdaLR", "PolynomialLR", "OneCycleLR", "CosineAnnealingLR"]


class OptimConfig(SpecSection):
    """``train.optim``: optimiser and learning-rate schedule."""

    optimizer: Literal["AdamW", "SGD"] = spec_field("AdamW", "Optimiser.", options=["AdamW", "SGD"])
    lr: float = spec_field(1e-4, "Peak learning rate.", gt=0, le=1, automl=True)
    momentum: float = spec_field(0.9, "SGD momentum (AdamW: beta1).", ge=0, lt=1, automl=True)
    weight_decay: float = spec_field(1e-4, "Weight decay.", ge=0, le=1, automl=True)
    lr_scheduler: Literal["MultiStepLR", "StepLR", "LambdaLR", "PolynomialLR", "OneCycleLR", "CosineAnnealingLR"] = (
        spec_field("MultiStepLR", "Learning-rate schedule (stepped per optimiser step).", options=SCHEDULERS)
    )
    lr_steps: list[int] = spec_field(
        default_factory=lambda: [1000], description="MultiStepLR milestones (optimiser steps)."
    )
    lr_step_size: int = spec_field(1000, "StepLR period (optimiser steps).", ge=1)
    lr_decay: float = spec_field(0.1, "Multiplicative decay of MultiStepLR/StepLR.", gt=0, le=1, automl=True)
    min_lr: float = spec_field(1e-7, "Floor of CosineAnnealingLR / PolynomialLR.", ge=0)
    warmup_steps: int = spec_field(20, "Linear warm-up steps before the schedule.", ge=0, automl=True)
    monitor_name: str = spec_field("val_loss", "Metric that names the best checkpoint.")

    @model_validator(mode="after")
    def _check(self) -> OptimConfig:
        if any(b <= a for a, b in zip(self.lr_steps, self.lr_steps[1:], strict=False)):
            raise ValueError(f"lr_steps: milestones must increase, got {self.lr_steps}")
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr: {self.min_lr} is above lr {self.lr}")
        return self


class TrainConfig(SpecSection):
    """``train``: the training run."""

    num_gpus: int = spec_field(1, "GPUs per node (0 = CPU).", ge=0, le=64)
    gpu_ids: list[int] = spec_field(default_factory=lambda: [0], description="GPU indices to use on each node.")
    num_nodes: int = spec_field(1, "Nodes.", ge=1, le=1024)
    seed: int = spec_field(1234, "Random seed (data order, augmentation, init).", ge=0)
    num_epochs: int = spec_field(10, "Epochs.", ge=1, le=100000)
    checkpoint_interval: int = spec_field(1, "Save a checkpoint every N units.", ge=1)
    checkpoint_interval_unit: Literal["epoch", "step"] = spec_field(
        "epoch", "Unit of checkpoint_interval.", options=["epoch", "step"]
    )
    checkpoint_weights_only: bool = spec_field(
        False,
        "Write model weights only in the epoch/step checkpoints (no optimizer, scheduler or loop state: "
        "about a third of the size; evaluate, inference, export and pretrained_model_path read them, but a "
        "run cannot resume from them). The interrupt checkpoint always keeps the full state.",
    )
    validation_interval: int = spec_field(1, "Validate every N epochs.", ge=1)
    resume_training_checkpoint_path: str | None = spec_field(
        None, "Resume from this checkpoint; else from the latest in results_dir.", path=True
    )
    pretrained_model_path: str | None = spec_field(
        None,
        "Initial weights (our checkpoints, a state_dict, TAO FFS/FS checkpoints, upstream pickles).",
        path=True,
    )
    results_dir: str | None = spec_field(None, "Train results folder (default: <results_dir>/train).", path=True)
    clip_grad_norm: float = spec_field(0.1, "Gradient clipping max norm (0 = off).", ge=0, automl=True)
    precision: Literal["fp32", "fp16", "bf16"] = spec_field(
        "fp32", "Training precision (bf16 works here, unlike TAO).", options=["fp32", "fp16", "bf16"]
    )
    distributed_strategy: Literal["ddp", "fsdp"] = spec_field(
        "ddp", "Multi-GPU strategy (Lightning).", options=["ddp", "fsdp"]
    )
    activation_checkpoint: bool = spec_field(False, "Recompute activations in backward to save memory.")
    channels_last: bool = spec_field(
        False, "GPU speed: keep 2D/3D conv weights and activations channels-last (tensor-core layout)."
    )
    cuda_graph: bool = spec_field(
        False,
        "GPU speed: replay forward + loss and backward as CUDA graphs (one GPU, fixed crop, fp32 or bf16; "
        "other cases run eagerly and say why).",
    )
    pad_channels: bool = spec_field(
        False,
        "GPU speed: train FastFoundationStereo with its pruned widths zero-padded to multiples of 8 "
        "(exact: same losses and gradients; checkpoints keep TAO's names and shapes; not with multi-GPU fsdp).",
    )
    compile: bool = spec_field(
        False,
        "GPU speed: torch.compile the FastFoundationStereo encoder and refinement iteration for training "
        "(the first step compiles for about 2 minutes; validation runs eagerly; other networks and CPU runs "
        "train eagerly and say why).",
    )
    log_every_n_steps: int = spec_field(50, "Logging period (steps).", ge=1)
    is_dry_run: bool = spec_field(False, "Run one batch of train and val, then stop (a smoke test).")
    optim: OptimConfig = spec_field(default_factory=OptimConfig, description="Optimiser and schedule.")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.num_gpus > 0 and len(self.gpu_ids) not in (0, self.num_gpus):
            raise ValueError(
                f"gpu_ids: {len(self.gpu_ids)} ids {self.gpu_ids} for num_gpus {self.num_gpus}; give one id per GPU"
            )
        if len(set(self.gpu_ids)) != len(self.gpu_ids):
            raise ValueError(f"gpu_ids: duplicate ids in {self.gpu_ids}")
        return self
