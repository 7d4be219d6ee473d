"""The refinement update's weight gradients, computed outside the compiled iteration's backward.

A training forward runs the update block ``iters`` times with the same weights. Left to autograd,
each iteration's backward computes every layer's weight gradient (bp2: 23 small GEMMs over
B*H*W pixels at 1/4 resolution, with cuDNN workspace initialisations and split-K reductions) in
between the input gradients that carry the backward to the previous iteration, and autograd then
adds the ``iters`` results of each parameter one by one (1,074 small adds per step). The input
gradients form a serial chain of small kernels that leaves much of the GPU idle; the weight
gradients depend on nothing downstream.

:class:`DeferredWeightGrads` takes them off that chain. Inside the update
(:class:`~layer_ops.TappedOps`) every tapped layer computes with detached parameters (the compiled
backward then computes no weight gradient for it), adds a zero tap to its output and returns its
input. The tap's gradient, which the compiled backward returns, is the layer's output gradient.
After every :data:`BATCH_ITERATIONS` iterations' backwards, and with the last one's, the taps' node
computes those iterations' weight and bias gradients at once, one product per layer over their
concatenated inputs and output gradients (layers with a :data:`WIDE_INPUT`, and linear layers, get
one per iteration instead; a fused convolution's parts, one product together); on CUDA on a side
stream, so they overlap the backward of the earlier iterations and the encoder's. A sink node whose
inputs are the parameters and whose output (a token) every taps node takes runs after the last of
them: it waits for the side stream, sums each parameter's partial gradients and returns them as the
parameters' gradients, through autograd (DDP's hooks, gradient clipping and the CUDA-graphed step
see them as before).

Forward values are unchanged; gradients equal autograd's up to the summation order. One backward
per forward (a ``retain_graph`` second backward raises).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import Function

from skillbank.runtime.networks.speed.grad_layout import memory_format_of
from skillbank.runtime.networks.speed.gradient_sink import GradientSink, token_grad
from skillbank.runtime.networks.speed.layer_ops import Layer, fused_key, skipped_key, tapped_layers

__all__ = ["DeferredWeightGrads", "weight_grads"]

#: a layer whose input has this many channels or more gets its weight gradient per iteration (bp2:
#: the motion encoder's 1x1 convolution of the 528 lookup channels, whose concatenation over the
#: iterations would cost more than the batched product saves); the others once per batch
WIDE_INPUT = 256
#: whether linear layers (bp2: the disparity head's MLPs, 40 -> 216/248 -> 40 channels) join the
#: batched products. Their inputs and output gradients are (pixels, channels) matrices already, so a
#: product per iteration needs no concatenation (~0.9 ms of the side stream's in a step); on an H100
#: per iteration was 0.3 ms faster (69.89 vs 70.25 and 70.32 vs 70.61 ms in two sessions;
#: benchmarks/EXPERIMENTS.md)
BATCH_LINEARS = False
#: iterations per batched product, started on the side stream once that many iterations' backwards
#: have run (the rest with the last one's, overlapping the encoder's backward; 0: all at once). 11 of
#: bp2's 22 ran as fast as 22 (70.1 vs 70.2 ms on an H200) with 1 GB less memory held for it
BATCH_ITERATIONS = 11

#: output channels from which a convolution's bias gradient is a matrix-vector product (``ones @
#: dy``, cuBLAS) rather than ``convolution_backward``'s reduction: 1.6-2.5x faster over 323,840
#: pixels of 40-248 channels, slower for 8 and 16 (benchmarks/EXPERIMENTS.md, bias_grad); linears'
#: bias gradients always are
GEMV_BIAS_CHANNELS = 32

_SIDE_STREAMS: dict[int, torch.cuda.Stream] = {}


def _side_stream(device: torch.device) -> torch.cuda.Stream:
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _SIDE_STREAMS:
        _SIDE_STREAMS[index] = torch.cuda.Stream(device=index)
    return _SIDE_STREAMS[index]


def weight_grads(layer: Layer, x: torch.Tensor, dy: torch.Tensor, weight: torch.Tensor | None = None
                 ) -> list[torch.Tensor]:
    """``[weight gradient, bias gradient]`` (no bias gradient without a bias) of ``layer`` that
    read ``x`` and whose output got the gradient ``dy``; in ``dy``'s dtype (``x`` is cast to it, as
    autocast cast it for the forward). ``weight``: of a fused convolution whose first part ``layer``
    is, its parts' weights concatenated (their gradients are the result's rows, in order). A
    convolution's ``x`` with fewer channels than the layer reads holds its last ones
    (``LayerOps.conv(skip=...)``): the first ones' weight gradient is zero here (autograd computes it
    where they were read)."""
    x = x.to(dy.dtype)
    has_bias = layer.bias is not None
    if isinstance(layer, nn.Linear):
        dy2 = dy.reshape(-1, dy.shape[-1])
        grads = [dy2.t() @ x.reshape(-1, x.shape[-1])]
        return grads + [_bias_grad(dy2)] if has_bias else grads
    weight = layer.weight.detach() if weight is None else weight
    skip = weight.shape[1] * layer.groups - x.shape[1]     # x: the last input channels only (LayerOps.conv)
    if skip or weight.dtype != dy.dtype:   # the kernel reads only the weight's shape, dtype and memory format
        weight = torch.empty_like(weight[:, skip:], dtype=dy.dtype)
    pixels = _pixels_by_channels(dy) if has_bias and dy.shape[1] >= GEMV_BIAS_CHANNELS else None
    reduce_bias = has_bias and pixels is None
    _, gw, gb = torch.ops.aten.convolution_backward(
        dy, x, weight, [weight.shape[0]] if reduce_bias else None, list(layer.stride), list(layer.padding),
        list(layer.dilation), False, [0, 0], layer.groups, [False, True, reduce_bias])
    if pixels is not None:
        gb = _bias_grad(pixels)
    if skip:                           # the skipped channels' share got its gradient through autograd
        gw = F.pad(gw, [0, 0] * (gw.dim() - 2) + [skip, 0])
    return [gw, gb] if has_bias else [gw]


def _adjacent(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``b``'s channels follow ``a``'s in one channels_last tensor (same pixels, strides)."""
    return (a.dim() == 4 and a.stride(1) == 1 and b.stride() == a.stride() and b.dtype == a.dtype
            and b.shape[0] == a.shape[0] and b.shape[2:] == a.shape[2:]
            and b.untyped_storage().data_ptr() == a.untyped_storage().data_ptr()
            and b.data_ptr() == a.data_ptr() + a.shape[1] * a.element_size())


def _fused_runs(grads: list[list[torch.Tensor]]) -> list[list[int]]:
    """``grads[layer][iteration]`` of layers that read the same input -> runs of consecutive layers
    whose output gradients are, in every iteration, adjacent channel ranges of one tensor (the taps
    of a fused convolution, :meth:`~layer_ops.TappedOps.conv`)."""
    runs = [[0]]
    for k in range(1, len(grads)):
        prev = grads[runs[-1][-1]]
        if len(grads[k]) == len(prev) and all(_adjacent(a, b) for a, b in zip(prev, grads[k], strict=True)):
            runs[-1].append(k)
        else:
            runs.append([k])
    return runs


def _joined(parts: list[torch.Tensor]) -> torch.Tensor:
    """Adjacent channel ranges (:func:`_adjacent`, in order) as one tensor: a view."""
    first = parts[0]
    n, _, h, w = first.shape
    return first.as_strided((n, sum(p.shape[1] for p in parts), h, w), first.stride())


def _pixels_by_channels(dy: torch.Tensor) -> torch.Tensor | None:
    """A channels_last ``(N, C, H, W)`` tensor as its ``(N*H*W, C)`` matrix (a view), else ``None``."""
    if not dy.is_contiguous(memory_format=torch.channels_last):
        return None
    return dy.permute(0, 2, 3, 1).reshape(-1, dy.shape[1])


def _bias_grad(dy2: torch.Tensor) -> torch.Tensor:
    """The column sums of a ``(pixels, C)`` output gradient, as one matrix-vector product."""
    return (dy2.new_ones(1, dy2.shape[0]) @ dy2).view(-1)


class _State:
    def __init__(self, layers: dict[str, Layer], dtype: torch.dtype, device: torch.device) -> None:
        self.layers = layers
        self.zero = torch.zeros((), dtype=dtype, device=device)
        self.side = _side_stream(device) if device.type == "cuda" else None
        self.inputs: list[dict[str, torch.Tensor] | None] = []
        self.grads: dict[str, list[list[torch.Tensor]]] = {key: [] for key in layers}
        self.keep: list[Any] = []        # tensors the side stream reads, alive until it is joined
        self.pending: list[tuple[dict[str, torch.Tensor], tuple[torch.Tensor | None, ...]]] = []
        self.done = 0
        # per layer: one product over the iterations' concatenated inputs and output gradients, or
        # one per iteration where the input is too wide to be worth concatenating, for linear layers
        # (BATCH_LINEARS), and in fp16 (a loss-scaled fp16 product over many iterations could
        # overflow where autograd's do not)
        self.batched_keys = {key for key, layer in layers.items()
                             if _in_features(layer) < WIDE_INPUT and dtype != torch.float16
                             and (BATCH_LINEARS or not isinstance(layer, nn.Linear))}
        self.finished = False

    def shapes(self, batch: int, height: int, width: int) -> list[tuple[int, ...]]:
        return [(batch, layer.out_channels, height, width) if isinstance(layer, nn.Conv2d)
                else (batch, height, width, layer.out_features) for layer in self.layers.values()]

    def iteration_backward(self, index: int, grads: tuple[torch.Tensor | None, ...]) -> None:
        inputs = self.inputs[index]
        if inputs is None:
            raise RuntimeError("the update block's weight gradients of this iteration were already taken: a "
                               "training forward of the refinement loop supports one backward (no retain_graph)")
        self.inputs[index] = None
        self.done += 1
        self.pending.append((inputs, grads))
        # the batched products start with the last iteration's backward (or every BATCH_ITERATIONS)
        flush = self.done == len(self.inputs) or len(self.pending) == BATCH_ITERATIONS
        with self._on_side_stream():
            self._weight_grads(inputs, grads)
            if flush and self.batched_keys:
                self._batched_weight_grads(self.pending)
        if flush or not self.batched_keys:     # alive until the side stream is joined
            self.keep.append(self.pending)
            self.pending = []

    def _on_side_stream(self):  # noqa: ANN202
        if self.side is None:
            return contextlib.nullcontext()
        self.side.wait_stream(torch.cuda.current_stream(self.side.device))
        return torch.cuda.stream(self.side)

    def _batched_weight_grads(self, pending: list[tuple[dict[str, torch.Tensor], tuple[torch.Tensor | None, ...]]]
                              ) -> None:
        # layers that read the same tensor (the GRUs' gates) share its concatenation
        groups: dict[tuple[Any, ...], list[tuple[str, list[tuple[torch.Tensor, torch.Tensor]]]]] = {}
        for j, key in enumerate(self.layers):
            if key not in self.batched_keys:
                continue
            pairs = [(inputs[key], grads[j]) for inputs, grads in pending if grads[j] is not None and key in inputs]
            if pairs:
                groups.setdefault(tuple((x.data_ptr(), x.shape, x.stride()) for x, _ in pairs), []).append((key, pairs))
        for members in groups.values():
            x = torch.cat([x for x, _ in members[0][1]])
            dys = [[dy for _, dy in pairs] for _, pairs in members]
            for run in _fused_runs(dys):
                layers = [self.layers[members[k][0]] for k in run]
                if len(run) == 1:
                    self.grads[layers[0].grad_key].append(weight_grads(layers[0], x, torch.cat(dys[run[0]])))
                    continue
                # a fused convolution's taps: their output gradients are adjacent channels of one
                # tensor, read as that tensor (one concatenation, one product; a strided copy each else)
                dy = torch.cat([_joined(parts) for parts in zip(*(dys[k] for k in run), strict=True)])
                grads = weight_grads(layers[0], x, dy, torch.cat([m.weight.detach() for m in layers]))
                parts = [g.split([m.out_channels for m in layers]) for g in grads]
                for i, layer in enumerate(layers):
                    self.grads[layer.grad_key].append([p[i] for p in parts])

    def _weight_grads(self, inputs: dict[str, torch.Tensor], grads: tuple[torch.Tensor | None, ...]) -> None:
        for (key, layer), dy in zip(self.layers.items(), grads, strict=True):
            if key in self.batched_keys:
                continue
            if dy is not None and key in inputs:     # (a layer fused with a frozen one runs plainly)
                self.grads[key].append(weight_grads(layer, inputs[key], dy))

    def finish(self, needs: tuple[bool, ...] = ()) -> list[torch.Tensor | None]:
        """Every tapped parameter's summed gradient, layer by layer (weight, then bias): the sink's
        backward (all of them train: ``needs`` is all true)."""
        if self.finished:
            raise RuntimeError("the update block's weight gradients were already handed out: a training forward "
                               "of the refinement loop supports one backward (no retain_graph)")
        self.finished = True
        out: list[torch.Tensor | None] = []
        stream = torch.cuda.stream(self.side) if self.side is not None else contextlib.nullcontext()
        with stream:
            for key, layer in self.layers.items():
                per_iteration = self.grads[key]
                for i, param in enumerate(_params(layer)):
                    if not per_iteration:
                        out.append(None)
                        continue
                    if len(per_iteration) == 1:
                        out.append(per_iteration[0][i].to(param.dtype))
                        continue
                    stacked = torch.stack([g[i] for g in per_iteration])
                    # summed in fp32 at least (bf16 per-iteration gradients), as autograd adds them
                    total = stacked.sum(0, dtype=torch.promote_types(stacked.dtype, torch.float32))
                    out.append(total.to(param.dtype))
        if self.side is not None:
            torch.cuda.current_stream(self.side.device).wait_stream(self.side)
        self.grads.clear()
        self.keep.clear()
        return out


def _in_features(layer: Layer) -> int:
    return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels


def _params(layer: Layer) -> list[torch.Tensor]:
    return [layer.weight] + ([layer.bias] if layer.bias is not None else [])


class _Taps(Function):
    """Token -> one zero tap per layer for one iteration; its backward takes the taps' gradients."""

    @staticmethod
    def forward(ctx: Any, state: _State, token: torch.Tensor, batch: int, height: int,
                width: int) -> tuple[torch.Tensor, ...]:
        ctx.state = state
        ctx.set_materialize_grads(False)     # an unused tap's gradient stays None
        ctx.index = len(state.inputs)
        state.inputs.append(None)
        return tuple(state.zero.expand(shape) for shape in state.shapes(batch, height, width))

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[Any, ...]:
        ctx.state.iteration_backward(ctx.index, grads)
        return None, token_grad(ctx.state.zero.device), None, None, None


class DeferredWeightGrads:
    """The tapped layers of one training forward (see the module docstring).

    Create it before the forward's first iteration (ideally before the encoder: its sink then runs
    after the encoder's backward, which the side stream's work overlaps); per iteration, pass
    :meth:`taps` into the update (:class:`~layer_ops.TappedOps`) and :meth:`record` what it read.

    Args:
        block: the update block (its layers tagged by :func:`~layer_ops.tag_layers`).
        dtype: the dtype the block's layers compute in (the autocast dtype under autocast).
    """

    def __init__(self, block: nn.Module, dtype: torch.dtype) -> None:
        layers = tapped_layers(block)
        device = next(iter(layers.values())).weight.device if layers else torch.device("cpu")
        self.state = _State(layers, dtype, device)
        self.token = GradientSink.apply(self.state.finish, device,
                                        *(p for layer in layers.values() for p in _params(layer)))
        self._params: dict[str, list[torch.Tensor]] | None = None
        self._fused: list[list[Layer]] = list(getattr(block, "fused_layers", lambda: [])())

    def params(self, skips: Mapping[str, int] | None = None) -> dict[str, list[torch.Tensor]]:
        """Every tapped layer's [weight, bias], detached and in the compute dtype, cast once per forward
        (:class:`~layer_ops.TappedOps` computes with them in every iteration: the same values autocast
        would cast them to there, without a cast kernel per parameter and iteration). ``skips``
        (``grad_key`` -> channels): layers whose input lacks its first channels in every iteration
        (:meth:`~layer_ops.LayerOps.conv`'s ``skip``) get their weight's slice of the rest too, made
        contiguous in the weight's layout once (``skipped_key``): a strided slice, cuDNN copied it in
        every iteration's forward and backward."""
        if self._params is None:
            dtype = self.state.zero.dtype
            self._params = {key: [p.detach().to(dtype) for p in _params(layer)]
                            for key, layer in self.state.layers.items()}
            for group in self._fused:            # and a fused convolution's, concatenated once
                if all(layer.grad_key in self._params for layer in group):
                    parts = [self._params[layer.grad_key] for layer in group]
                    self._params[fused_key(group)] = [torch.cat(p) for p in zip(*parts, strict=True)]
            for key, skip in (skips or {}).items():
                if key in self._params:
                    weight, *rest = self._params[key]
                    sliced = weight[:, skip:].contiguous(memory_format=memory_format_of(weight))
                    self._params[skipped_key(key, skip)] = [sliced, *rest]
        return self._params

    def taps(self, batch: int, height: int, width: int) -> dict[str, torch.Tensor]:
        """Zero taps (``grad_key`` -> zeros of the layer's output shape, stride 0) for one iteration."""
        if not self.state.layers:
            return {}
        zeros = _Taps.apply(self.state, self.token, batch, height, width)
        return dict(zip(self.state.layers, zeros, strict=True))

    def record(self, inputs: dict[str, torch.Tensor]) -> None:
        """What the iteration that got the latest :meth:`taps` read, per ``grad_key``."""
        self.state.inputs[-1] = {key: x.detach() for key, x in inputs.items()}

    @staticmethod
    def needed(block: nn.Module) -> bool:
        """Whether a forward trains ``block``'s weights here (not under no_grad, nor while TorchDynamo
        or the TorchScript tracer records the forward)."""
        return (torch.is_grad_enabled() and not torch.compiler.is_compiling() and not torch.jit.is_tracing()
                and any(p.requires_grad for p in block.parameters()))
