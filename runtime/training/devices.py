"""Where a run executes: the spec's device keys -> Lightning Trainer arguments.

``train.num_gpus`` 0, or no CUDA device on the machine, trains on the CPU. One CPU process by default;
``DEPTH_NET_CPU_PROCESSES=N`` (environment) asks for N CPU processes in DDP over gloo: the smallest
spec-compatible way to run (and test) the distributed path without GPUs. With GPUs, ``gpu_ids`` (one id
per GPU) or else ``num_gpus`` picks the devices; more than one device, or ``num_nodes`` > 1, uses
``distributed_strategy`` (ddp or fsdp). Precision: fp32 -> ``32-true``, fp16 -> ``16-mixed``,
bf16 -> ``bf16-mixed``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch

from skillbank.runtime.errors import ConfigurationError

log = logging.getLogger("depth_net")

CPU_PROCESSES_ENV = "DEPTH_NET_CPU_PROCESSES"
PRECISION = {"fp32": "32-true", "fp16": "16-mixed", "bf16": "bf16-mixed"}


@dataclass
class DevicePlan:
    """Lightning's accelerator/devices/strategy/precision for a run, and its world size."""

    accelerator: str
    devices: int | list[int]
    num_nodes: int
    strategy: Any
    precision: str

    @property
    def world_size(self) -> int:
        per_node = len(self.devices) if isinstance(self.devices, list) else int(self.devices)
        return per_node * self.num_nodes


def cpu_processes() -> int:
    """``DEPTH_NET_CPU_PROCESSES`` as an int >= 1 (1 when unset)."""
    raw = os.environ.get(CPU_PROCESSES_ENV, "").strip()
    if not raw:
        return 1
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{CPU_PROCESSES_ENV}: expected a number of CPU processes, got {raw!r}") from None
    if value < 1:
        raise ConfigurationError(f"{CPU_PROCESSES_ENV}: must be >= 1, got {value}")
    return value


def plan_training_devices(train_cfg: Any) -> DevicePlan:
    """DevicePlan for the spec's ``train`` section on this machine."""
    precision = PRECISION[train_cfg.precision]
    cuda = torch.cuda.is_available()
    if train_cfg.num_gpus == 0 or not cuda:
        if train_cfg.num_gpus > 0:
            log.warning("train.num_gpus is %d but no CUDA device is available: training on the CPU", train_cfg.num_gpus)
        devices: int | list[int] = cpu_processes()
        accelerator = "cpu"
        if precision == "16-mixed":
            log.warning("train.precision fp16 has no CPU autocast; using bf16 on the CPU")
            precision = "bf16-mixed"
    else:
        accelerator = "gpu"
        available = torch.cuda.device_count()
        ids = list(train_cfg.gpu_ids) if train_cfg.gpu_ids else list(range(train_cfg.num_gpus))
        bad = [i for i in ids if i >= available]
        if bad:
            raise ConfigurationError(f"train.gpu_ids: {bad} not present; this machine has {available} GPU(s)")
        devices = ids
    plan = DevicePlan(accelerator, devices, int(train_cfg.num_nodes), "auto", precision)
    if plan.world_size > 1:
        plan.strategy = _strategy(train_cfg.distributed_strategy, accelerator)
    return plan


def _strategy(name: str, accelerator: str) -> Any:
    from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy

    if name == "fsdp":
        if accelerator == "cpu":
            raise ConfigurationError("train.distributed_strategy: fsdp needs GPUs; use ddp for CPU processes")
        return FSDPStrategy()
    backend = "gloo" if accelerator == "cpu" else "nccl"
    return DDPStrategy(process_group_backend=backend, find_unused_parameters=False)


def eval_device(num_gpus: int, gpu_ids: list[int]) -> torch.device:
    """One device for evaluate/inference: the first of ``gpu_ids`` when GPUs are asked for and present."""
    if num_gpus > 0 and torch.cuda.is_available():
        index = gpu_ids[0] if gpu_ids else 0
        if index >= torch.cuda.device_count():
            raise ConfigurationError(f"gpu_ids: GPU {index} not present; this machine has {torch.cuda.device_count()}")
        return torch.device("cuda", index)
    if num_gpus > 0:
        log.warning("num_gpus is %d but no CUDA device is available: running on the CPU", num_gpus)
    return torch.device("cpu")
