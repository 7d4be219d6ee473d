"""CUDA-graphed training loss: the forward + loss and its backward replayed as two CUDA graphs.

A stereo training step launches ~19,000 small kernels (22 refinement iterations, forward and
backward); eager PyTorch spends more time launching them than the GPU spends running them.
:class:`GraphedStereoLoss` captures ``loss = sequence_loss(model(left, right), gt, valid)`` and its
backward once (:class:`_CapturedLoss`, the recipe of :func:`torch.cuda.make_graphed_callables`: warm-up
on a side stream, then the forward and ``torch.autograd.grad`` captured into one memory pool); every
later step copies the batch into the captured input buffers and replays both graphs. ``loss.backward()``
replays the backward graph and hands each parameter its gradient as autograd's gradient accumulation
would (the captured buffer when ``.grad`` is unset, an add otherwise), so gradient clipping, the
optimiser, the LR schedule, Lightning's step counting and checkpoints behave exactly as without graphs.

Why not ``make_graphed_callables`` itself: its autograd node takes every parameter as an input
(426 for FFS bp2), and building that node costs ~0.2 ms of host time per step *before* the forward
graph launches, time the GPU sits idle whenever the host waits for a step. The node here takes the
batch and one anchor tensor; the parameters get their gradients after the backward replay, while the
GPU is still busy.

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
    gradients (:mod:`~runtime.networks.speed.deferred_weight_grads`, on a default-priority side stream)
    fill what it leaves idle instead of delaying it."""
    graph = torch.cuda.graph
    previous = getattr(graph, "default_capture_stream", None)
    graph.default_capture_stream = torch.cuda.Stream(device=device, priority=-1)   # lower: higher priority
    try:
        yield
    finally:
        graph.default_capture_stream = previous


def _obeys_layout(grad: torch.Tensor, param: torch.Tensor) -> bool:
    """Whether autograd would keep ``grad`` as ``param.grad`` as it is (its gradient-layout contract:
    a dense parameter's gradient has the parameter's strides, dimensions of size 1 aside)."""
    return all(size == 1 or gs == ps for size, gs, ps in zip(param.shape, grad.stride(), param.stride(), strict=True))


class _CapturedLoss:
    """``loss_fn(*batch)`` and its parameter gradients captured as two CUDA graphs over static buffers.

    ``params``: the tensors that get gradients (the trainable parameters, in order). Capture follows
    :func:`torch.cuda.make_graphed_callables`: ``warmup_iters`` forward + backward passes on a side
    stream (cuDNN autotuning and lazy initialisation stay out of the graphs), then the forward and
    ``torch.autograd.grad`` captured into one memory pool, backward after forward as they replay.
    """

    def __init__(self, loss_fn: Callable[..., torch.Tensor], sample: tuple[torch.Tensor, ...],
                 params: tuple[torch.Tensor, ...], warmup_iters: int) -> None:
        self.inputs = tuple(t.detach().clone() for t in sample)
        torch.cuda.synchronize()
        with torch.cuda.stream(torch.cuda.Stream()):
            for _ in range(warmup_iters):
                loss = loss_fn(*self.inputs)
                torch.autograd.grad(loss, params, torch.ones_like(loss), allow_unused=True)
            del loss
        torch.cuda.synchronize()
        pool = torch.cuda.graph_pool_handle()
        self.forward_graph, self.backward_graph = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.forward_graph, pool=pool):
            self.loss = loss_fn(*self.inputs)
        self.grad_of_loss = torch.empty_like(self.loss)
        with torch.cuda.graph(self.backward_graph, pool=pool):
            grads = torch.autograd.grad(self.loss, params, self.grad_of_loss, allow_unused=True)
        #: (parameter, its gradient buffer, whether the buffer has the parameter's layout)
        self.grads = [(p, g, _obeys_layout(g, p)) for p, g in zip(params, grads, strict=True) if g is not None]
        self.handed_out = False     # some .grad may be a gradient buffer (see _take_back_gradients)
        moved = sum(not same for _, _, same in self.grads)
        if moved:
            log.debug("CUDA graph: %d gradients are copied into their parameter's layout every step", moved)

    def replay_forward(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if self.handed_out:
            self._take_back_gradients()
        for static, t in zip(self.inputs, batch, strict=True):
            if static.data_ptr() != t.data_ptr():
                static.copy_(t)
        self.forward_graph.replay()
        return self.loss.detach()

    def _take_back_gradients(self) -> None:
        """Copy out every ``.grad`` that is still a gradient buffer (kept for accumulation, or zeroed
        in place). The buffers live in the graphs' memory pool: both replays rewrite them, the
        forward's activations included. With ``zero_grad(set_to_none=True)`` between steps, as
        Lightning does, nothing is copied and this costs one pass over the parameters (28 us for bp2's
        422 on a 2-core CPU: ``benchmarks/EXPERIMENTS.md``, graph_node_cost)."""
        for p, g, _ in self.grads:
            if p.grad is not None and p.grad.data_ptr() == g.data_ptr():
                p.grad = p.grad.clone()
        self.handed_out = False

    def replay_backward(self, grad_of_loss: torch.Tensor) -> None:
        """Replay the backward graph and deliver the gradients: the buffer itself where ``.grad`` is
        unset (as autograd does when the layouts agree; it stays valid until the next replay), an
        add where a gradient is accumulating."""
        if self.handed_out:          # a second backward through the same forward
            self._take_back_gradients()
        if grad_of_loss.data_ptr() != self.grad_of_loss.data_ptr():
            self.grad_of_loss.copy_(grad_of_loss)
        self.backward_graph.replay()
        sums, adds = [], []
        for p, g, same_layout in self.grads:
            if p.grad is not None:
                sums.append(p.grad)
                adds.append(g)
            elif same_layout:
                p.grad = g.detach()
                self.handed_out = True
            else:
                p.grad = torch.empty_like(p).copy_(g)
        if sums:
            torch._foreach_add_(sums, adds)


class _ReplayedLoss(torch.autograd.Function):
    """The autograd node of a replayed step. Its only differentiable input is an anchor tensor (so
    the loss requires grad); the backward delivers the parameters' gradients itself."""

    @staticmethod
    def forward(ctx: Any, captured: _CapturedLoss, anchor: torch.Tensor,
                *batch: torch.Tensor) -> torch.Tensor:
        ctx.captured, ctx.inputs = captured, 2 + len(batch)
        return captured.replay_forward(batch)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, ...]:
        ctx.captured.replay_backward(grad)
        return (None,) * ctx.inputs


class GraphedStereoLoss:
    """Callable ``(left, right, gt, valid) -> loss``: eager until :meth:`__call__` first sees a CUDA
    batch, then captured and replayed for every batch of the captured shapes.

    ``loss_fn(model, left, right, gt, valid)`` computes the differentiable scalar loss.
    ``autocast_dtype`` is the autocast dtype of the run (``None`` for fp32): capture runs under
    ``torch.autocast(cache_enabled=False)``, which graph capture requires (a replay needs no autocast).
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[..., torch.Tensor], *,
                 autocast_dtype: torch.dtype | None = None, warmup_iters: int = 3) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.autocast_dtype = autocast_dtype
        self.warmup_iters = warmup_iters
        self._captured: _CapturedLoss | None = None
        self._anchor = torch.zeros((), requires_grad=True)
        self._shapes: tuple[tuple[int, ...], ...] | None = None
        self._logged_mismatch = False

    @property
    def captured(self) -> bool:
        return self._captured is not None

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
        params = tuple(p for p in self.model.parameters() if p.requires_grad)
        with self._autocast(), _high_priority_capture(batch[0].device):
            captured = _CapturedLoss(self._eager, batch, params, self.warmup_iters)
        with torch.no_grad():
            for name, b in self.model.named_buffers():
                b.copy_(buffers[name])
        torch.set_rng_state(cpu_rng)
        torch.cuda.set_rng_state(cuda_rng)
        for p in self.model.parameters():   # the first replayed step starts from no gradients
            p.grad = None
        self._captured = captured
        self._shapes = tuple(tuple(t.shape) for t in batch)

    def __call__(self, left: torch.Tensor, right: torch.Tensor, gt: torch.Tensor,
                 valid: torch.Tensor) -> torch.Tensor:
        batch = (left, right, gt, valid)
        if left.device.type != "cuda" or not self.model.training:
            return self._eager(*batch)
        if self._captured is None:
            self._capture(batch)
            log.info("training step captured in CUDA graphs (batch %s)", tuple(left.shape))
        if tuple(tuple(t.shape) for t in batch) != self._shapes:
            if not self._logged_mismatch:
                log.info("batch shapes %s differ from the captured %s: such batches run eagerly",
                         [tuple(t.shape) for t in batch], self._shapes)
                self._logged_mismatch = True
            return self._eager(*batch)
        return _ReplayedLoss.apply(self._captured, self._anchor, *batch)
