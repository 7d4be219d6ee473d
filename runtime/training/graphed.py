"""CUDA-graphed training loss: the forward + loss and its backward replayed as two CUDA graphs.

A stereo training step launches ~19,000 small kernels (22 refinement iterations, forward and
backward); eager PyTorch spends more time launching them than the GPU spends running them.
:class:`GraphedStereoLoss` captures ``loss = sequence_loss(model(left, right), gt, valid)`` and its
backward once with :func:`torch.cuda.make_graphed_callables`; every later step copies the batch into
the captured input buffers and replays both graphs. Everything else stays eager and unchanged:
autograd delivers the parameter gradients (so gradient clipping, the optimiser, the LR schedule,
Lightning's step counting and checkpoints behave exactly as without graphs).

Conditions (checked; otherwise the eager path runs and the reason is logged once):

* a CUDA device and one process (DDP's gradient hooks are not captured here);
* fixed batch shapes: training crops are fixed-size; a batch of another shape (a last partial
  batch) runs eagerly;
* precision fp32 or bf16 (fp16 needs the GradScaler's host-side inf checks);
* the network is not changed after capture (same parameters, same ``requires_grad``).

Capture runs three warm-up passes on the first batch; BatchNorm running statistics and the RNG
state are restored afterwards so the graphed run trains on exactly the same data as an eager one.
Random ops (dropout) draw from the CUDA generator, which graphs support: the per-step reseeding of
:class:`~runtime.training.module.DepthNetModule` keeps resumed runs reproducible.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

log = logging.getLogger("depth_net")

__all__ = ["GraphedStereoLoss", "graph_unsupported_reason"]


def graph_unsupported_reason(device: torch.device, world_size: int, precision: str) -> str | None:
    """Why a CUDA-graphed step cannot run here, or ``None`` when it can."""
    if device.type != "cuda":
        return f"the model is on {device.type}, CUDA graphs need a CUDA device"
    if world_size > 1:
        return f"{world_size} processes: CUDA-graphed steps run on one GPU only (DDP hooks are not captured)"
    if precision == "fp16":
        return "precision fp16 uses a GradScaler with host-side checks; use bf16 or fp32 with CUDA graphs"
    return None


@contextlib.contextmanager
def _high_priority_capture(device: torch.device) -> Iterator[None]:
    """Capture on a high-priority stream. PyTorch instantiates graphs with per-node priorities (a
    kernel node keeps the priority of the stream it was captured on), so the step's critical path
    (the refinement loop's serial chain of small kernels) gets the SMs first, and the deferred weight
    gradients (:mod:`~runtime.networks.deferred_weight_grads`, on a default-priority side stream)
    fill what it leaves idle instead of delaying it."""
    graph = torch.cuda.graph
    previous = getattr(graph, "default_capture_stream", None)
    graph.default_capture_stream = torch.cuda.Stream(device=device, priority=-1)   # lower: higher priority
    try:
        yield
    finally:
        graph.default_capture_stream = previous


class _LossModule(nn.Module):
    """``(left, right, gt, valid) -> loss`` around the network; its parameters are the network's."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, left: torch.Tensor, right: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.model, left, right, gt, valid)


class GraphedStereoLoss:
    """Callable ``(left, right, gt, valid) -> loss``: eager until :meth:`__call__` first sees a CUDA
    batch, then captured and replayed for every batch of the captured shapes.

    ``loss_fn(model, left, right, gt, valid)`` computes the differentiable scalar loss.
    ``autocast_dtype`` is the autocast dtype of the run (``None`` for fp32): capture and replay run
    under ``torch.autocast(cache_enabled=False)``, which graph capture requires.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[..., torch.Tensor], *,
                 autocast_dtype: torch.dtype | None = None, warmup_iters: int = 3) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.autocast_dtype = autocast_dtype
        self.warmup_iters = warmup_iters
        self._graphed: Callable[..., torch.Tensor] | None = None
        self._shapes: tuple[tuple[int, ...], ...] | None = None
        self._logged_mismatch = False

    @property
    def captured(self) -> bool:
        return self._graphed is not None

    def _autocast(self) -> Any:
        if self.autocast_dtype is None:
            return torch.autocast("cuda", enabled=False)
        return torch.autocast("cuda", dtype=self.autocast_dtype, cache_enabled=False)

    def _eager(self, *batch: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.model, *batch)

    def _capture(self, batch: tuple[torch.Tensor, ...]) -> None:
        """Warm up and capture on copies of ``batch``; restore BatchNorm statistics and the RNG."""
        buffers = {name: b.detach().clone() for name, b in self.model.named_buffers()}
        cpu_rng, cuda_rng = torch.get_rng_state(), torch.cuda.get_rng_state()
        wrapper = _LossModule(self.model, self.loss_fn)
        sample = tuple(t.detach().clone() for t in batch)
        with self._autocast(), _high_priority_capture(batch[0].device):
            graphed = torch.cuda.make_graphed_callables(
                wrapper, sample, num_warmup_iters=self.warmup_iters, allow_unused_input=True)
        with torch.no_grad():
            for name, b in self.model.named_buffers():
                b.copy_(buffers[name])
        torch.set_rng_state(cpu_rng)
        torch.cuda.set_rng_state(cuda_rng)
        for p in self.model.parameters():   # the warm-up's gradients are not the first step's
            p.grad = None
        self._graphed = graphed
        self._shapes = tuple(tuple(t.shape) for t in batch)

    def __call__(self, left: torch.Tensor, right: torch.Tensor, gt: torch.Tensor,
                 valid: torch.Tensor) -> torch.Tensor:
        batch = (left, right, gt, valid)
        if left.device.type != "cuda" or not self.model.training:
            return self._eager(*batch)
        if self._graphed is None:
            self._capture(batch)
            log.info("training step captured in CUDA graphs (batch %s)", tuple(left.shape))
        if tuple(tuple(t.shape) for t in batch) != self._shapes:
            if not self._logged_mismatch:
                log.info("batch shapes %s differ from the captured %s: such batches run eagerly",
                         [tuple(t.shape) for t in batch], self._shapes)
                self._logged_mismatch = True
            return self._eager(*batch)
        with self._autocast():
            return self._graphed(*batch)
