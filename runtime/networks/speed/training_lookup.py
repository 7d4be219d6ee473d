"""The refinement loop's lookup in training: every iteration's gradient lands in one buffer.

Left to autograd, each of the ``iters`` lookups of a training forward differentiates its gather
into a gradient the size of the whole tables (for bp2 at 320x736, D = 48: 2.2 M rows of 28 channels,
125 MB in bf16): zeroed, scatter-added into with atomics, then summed with the other iterations'. Yet a
lookup reads only ``L * (2r+2)`` rows per pixel. :class:`AccumulatingLookup` gives the tables of
one forward a gradient buffer, zeroed once; each iteration's backward adds its rows straight into
it (:func:`cost_volume.add_lookup_grad_`: read, add, write back, no atomics), and once every
iteration's backward has run, autograd hands the buffer to the tables' producers (the encoder).
The forward and its values are exactly :func:`cost_volume.sample_lookup`'s.

How the ordering is guaranteed: a sink node (:class:`~gradient_sink.GradientSink`) sits between the
tables and a scalar token that every lookup takes as input. Autograd runs the sink's backward only
after all of the token's consumers, i.e. after every lookup's backward; it returns the buffers as
the tables' gradients. Lookups take the tables and buffers as plain Python attributes, outside
autograd. One backward per forward: the buffers are not re-zeroed (a ``retain_graph`` second
backward raises instead of doubling the gradients).

The gather and the gradient scatter are pure functions (``forward_fn``, ``grad_fn``) that the
network may pass compiled (:meth:`FastFoundationStereo.compile_regions`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.autograd import Function

from skillbank.runtime.networks.common.cost_volume import (
    LookupRows,
    LookupTables,
    add_lookup_grad_,
    lookup_rows,
    sample_lookup,
)
from skillbank.runtime.networks.speed.gradient_sink import GradientSink, token_grad

__all__ = ["AccumulatingLookup", "gather_lookup"]


def gather_lookup(tables: LookupTables, disp: torch.Tensor, channels_last: bool, pad_channels: int,
                  out_dtype: torch.dtype) -> tuple[torch.Tensor, LookupRows]:
    """:func:`sample_lookup` in ``out_dtype`` (the dtype its consumer computes in) and its rows."""
    rows = lookup_rows(tables, disp)
    feat = sample_lookup(tables, disp, channels_last=channels_last, pad_channels=pad_channels, rows=rows)
    return feat.to(out_dtype), rows


class _State:
    """What the lookups of one forward share: the tables, their gradient buffers, the functions."""

    def __init__(self, tables: LookupTables, forward_fn: Callable[..., Any],
                 grad_fn: Callable[..., None]) -> None:
        self.tables = tables
        self.forward_fn = forward_fn
        self.grad_fn = grad_fn
        self.geo_grad = torch.zeros_like(tables.geo_store, memory_format=torch.contiguous_format)
        self.corr_grad = torch.zeros_like(tables.corr_store, memory_format=torch.contiguous_format)
        self.backwards = 0

    def hand_out(self, needs: tuple[bool, ...]) -> tuple[torch.Tensor | None, ...]:
        """The accumulated buffers as the tables' gradients (the sink's backward)."""
        self.backwards += 1
        if self.backwards > 1:
            raise RuntimeError("the lookup tables' gradient was already handed out: a training forward of the "
                               "refinement loop supports one backward (no retain_graph)")
        return (self.geo_grad if needs[0] else None, self.corr_grad if needs[1] else None)


class _Lookup(Function):
    @staticmethod
    def forward(ctx: Any, token: torch.Tensor, disp: torch.Tensor, state: _State, channels_last: bool,
                pad_channels: int, out_dtype: torch.dtype) -> torch.Tensor:
        feat, rows = state.forward_fn(state.tables, disp, channels_last, pad_channels, out_dtype)
        ctx.save_for_backward(*rows)
        ctx.state = state
        return feat

    @staticmethod
    def backward(ctx: Any, grad_feat: torch.Tensor) -> tuple[Any, ...]:
        state = ctx.state
        state.grad_fn(grad_feat, LookupRows(*ctx.saved_tensors), state.geo_grad, state.corr_grad)
        return token_grad(grad_feat.device), None, None, None, None, None


class AccumulatingLookup:
    """The lookups of one training forward (see the module docstring); call once per iteration.

    Args:
        tables: the forward's :class:`LookupTables` (their stores carry the encoder's autograd history).
        channels_last, pad_channels: as :func:`sample_lookup`.
        forward_fn: :func:`gather_lookup` or a compiled version of it.
        grad_fn: :func:`cost_volume.add_lookup_grad_` or a compiled version of it.
    """

    def __init__(self, tables: LookupTables, *, channels_last: bool = True, pad_channels: int = 0,
                 forward_fn: Callable[..., Any] = gather_lookup,
                 grad_fn: Callable[..., None] = add_lookup_grad_) -> None:
        self.state = _State(tables, forward_fn, grad_fn)
        self.channels_last = channels_last
        self.pad_channels = pad_channels
        self.token = GradientSink.apply(self.state.hand_out, tables.geo_store.device, tables.geo_store,
                                        tables.corr_store)

    def __call__(self, disp: torch.Tensor, out_dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Sample around the (detached) ``disp`` (B, 1, H, W): :func:`sample_lookup`'s result in ``out_dtype``."""
        return _Lookup.apply(self.token, disp.detach(), self.state, self.channels_last, self.pad_channels,
                             out_dtype)

    @staticmethod
    def needed(tables: LookupTables) -> bool:
        """Whether a forward over ``tables`` records gradients for them (training; not while TorchDynamo
        or the TorchScript tracer of the ONNX export records the forward, where the plain
        differentiable :func:`sample_lookup` runs)."""
        return (torch.is_grad_enabled() and not torch.compiler.is_compiling() and not torch.jit.is_tracing()
                and (tables.geo_store.requires_grad or tables.corr_store.requires_grad))
