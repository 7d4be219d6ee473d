"""The seam between FastFoundationStereo's algorithm and its speed machinery.

The model computes through four methods that are the method itself (``ffs/model.py``): ``_encode``
(features, cost volume, filtering, initial disparity, context, lookup tables), ``_iteration`` (one
refinement step: lookup, update), ``_update`` (the update from given lookup features, its layers
applied through an ``ops`` object) and ``_upsample``. Its forward runs them through one
:class:`ForwardRun` (``self.speed.start(self, device)``), which decides how each runs:

- compiled or eager (:class:`SpeedRunner`: ``model.compile_regions()`` compiles the :data:`REGIONS`,
  each on first use; ``training_only`` keeps eval mode eager);
- in a training forward (grad enabled, tables that record gradients), one refinement iteration as
  the lookup's gather, the update and, in the backward, the lookup's gradient scatter, with all
  iterations' lookup gradients accumulated in one buffer (:mod:`.training_lookup`, the gather and
  scatter as Triton kernels where :func:`.lookup_kernels.usable`), and the update's weight gradients
  computed outside the iterations' backward (:mod:`.deferred_weight_grads`: the update's layers then
  run through :class:`~.layer_ops.TappedOps` instead of :data:`~.layer_ops.PLAIN`).

Every path computes the same values; gradients equal autograd's up to summation order. The runner
holds no reference to the model (the model holds the runner): methods take it as an argument.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from skillbank.runtime.networks.common.cost_volume import LookupTables, add_lookup_grad_, lookup_rows
from skillbank.runtime.networks.speed import lookup_kernels
from skillbank.runtime.networks.speed.deferred_weight_grads import DeferredWeightGrads
from skillbank.runtime.networks.speed.layer_ops import TappedOps
from skillbank.runtime.networks.speed.training_lookup import AccumulatingLookup, gather_lookup

__all__ = ["REGIONS", "ForwardRun", "SpeedRunner"]

#: what :meth:`SpeedRunner.compile` compiles (each on first use): the encoder, one refinement
#: iteration (inference), its update alone with the lookup's gather and gradient scatter (training,
#: :mod:`.training_lookup`; on a GPU the lookup's rows only, the rest is :mod:`.lookup_kernels`) and
#: the batched upsampling
REGIONS = ("encode", "iteration", "update", "lookup_rows", "gather_lookup", "add_lookup_grad", "upsample")
#: the regions that are the model's own methods (``_encode``, ...); the others are this module's
_MODEL_REGIONS = ("encode", "iteration", "upsample")

Step = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _batch_hw(x: torch.Tensor) -> tuple[int, int, int]:
    return x.shape[0], x.shape[-2], x.shape[-1]


class SpeedRunner:
    """The compiled regions of one FastFoundationStereo (``model.speed``); a plain object, not a
    module: nothing of it is in the state_dict."""

    def __init__(self) -> None:
        self.compiled: dict[str, Callable[..., Any]] = {}   # region name -> compiled callable
        self.training_only = False

    def compile(self, model: nn.Module, **compile_kwargs: Any) -> None:
        """``torch.compile`` every region of ``model`` (see ``FastFoundationStereo.compile_regions``)."""
        if compile_kwargs.pop("off", False):
            self.compiled = {}
            return
        self.training_only = bool(compile_kwargs.pop("training_only", False))
        kwargs = {"fullgraph": True, "dynamic": False, **compile_kwargs}
        self.compiled = {name: torch.compile(self.eager(model, name), **kwargs) for name in REGIONS}

    def region(self, model: nn.Module, name: str) -> Callable[..., Any]:
        """Region ``name`` of ``model`` as it runs now: compiled, or eager (not compiled, or compiled
        for training only and ``model`` in eval mode)."""
        if self.training_only and not model.training:
            return self.eager(model, name)
        return self.compiled.get(name) or self.eager(model, name)

    def eager(self, model: nn.Module, name: str) -> Callable[..., Any]:
        """The uncompiled callable of region ``name``."""
        if name in _MODEL_REGIONS:
            return getattr(model, f"_{name}")
        if name == "update":
            return functools.partial(_update, model)
        return getattr(self, f"_{name}")

    _gather_lookup = staticmethod(gather_lookup)
    _lookup_rows = staticmethod(lookup_rows)
    _add_lookup_grad = staticmethod(add_lookup_grad_)

    def start(self, model: nn.Module, device: torch.device) -> ForwardRun:
        """The paths of one forward of ``model``. Call it before the encoder: the deferred weight
        gradients' sink is then created first, so its backward runs after the encoder's and their
        side stream overlaps that too."""
        return ForwardRun(model, self, _deferred_weight_grads(model, device))


class ForwardRun:
    """One forward's regions: :meth:`encode`, :meth:`iteration` (a step function for the loop) and
    :meth:`upsample`."""

    def __init__(self, model: nn.Module, runner: SpeedRunner, weights: DeferredWeightGrads | None) -> None:
        self.model = model
        self.runner = runner
        self.weights = weights

    def encode(self, left: torch.Tensor, right: torch.Tensor) -> tuple[Any, ...]:
        return self.runner.region(self.model, "encode")(left, right)

    def upsample(self, disp: torch.Tensor, net: torch.Tensor, stem_2x: torch.Tensor) -> torch.Tensor:
        return self.runner.region(self.model, "upsample")(disp, net, stem_2x)

    def iteration(self, tables: LookupTables, context: torch.Tensor, att: torch.Tensor) -> Step:
        """``step(disp, net) -> (disp, net)``: one refinement iteration over ``tables`` with the
        forward's context features and attention map."""
        if AccumulatingLookup.needed(tables):
            return self._training_iteration(tables, context, att)
        region = self.runner.region(self.model, "iteration")

        def step(disp: torch.Tensor, net: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return region(tables, disp, net, context, att)

        return step

    def _training_iteration(self, tables: LookupTables, context: torch.Tensor, att: torch.Tensor) -> Step:
        """The step of a forward that trains the tables: the lookups' gradients accumulate in one
        buffer (:mod:`.training_lookup`) instead of one tables-sized gradient each; with deferred
        weight gradients, the update's are computed outside the compiled backward."""
        model, runner, weights = self.model, self.runner, self.weights
        if lookup_kernels.usable(context):       # Triton kernels for the gather and the scatter
            forward_fn = functools.partial(lookup_kernels.gather_lookup, rows_fn=runner.region(model, "lookup_rows"))
            grad_fn = lookup_kernels.add_lookup_grad_
        else:
            forward_fn, grad_fn = runner.region(model, "gather_lookup"), runner.region(model, "add_lookup_grad")
        lookup = AccumulatingLookup(tables, channels_last=model.channels_last, pad_channels=model.lookup_pad,
                                    forward_fn=forward_fn, grad_fn=grad_fn)
        update = runner.region(model, "update")
        dtype = _compute_dtype(model, context.device)   # (autocast casts the lookup features to it anyway)
        skips = model.update_block.context_skips(model.context_pad)

        def step(disp: torch.Tensor, net: torch.Tensor):
            disp = disp.detach()
            if weights is None:
                return update(lookup(disp, dtype), disp, net, context, att)
            *out, read = update(lookup(disp, dtype), disp, net, context, att, weights.taps(*_batch_hw(net)),
                                weights.params(skips))
            weights.record(read)
            return out

        return step


def _update(model: nn.Module, corr: torch.Tensor, disp: torch.Tensor, net: torch.Tensor, context: torch.Tensor,
            att: torch.Tensor, taps: dict[str, torch.Tensor] | None = None,
            params: dict[str, list[torch.Tensor]] | None = None):
    """Region "update": ``model._update`` from the lookup features ``corr`` (the training lookup
    samples them outside the region). With ``taps`` (:mod:`.deferred_weight_grads`) its layers run
    tapped (with ``params``, their parameters cast once per forward), and what they read comes back
    too."""
    if taps is None:
        return model._update(corr, disp, net, context, att)
    ops = TappedOps(taps, params)
    disp, net = model._update(corr, disp, net, context, att, ops)
    return disp, net, ops.inputs


def _deferred_weight_grads(model: nn.Module, device: torch.device) -> DeferredWeightGrads | None:
    """The update's deferred weight gradients for a training forward, or ``None``
    (``model.deferred_weight_grads``: ``None`` defers on CUDA only)."""
    enabled = model.deferred_weight_grads
    if enabled is None:
        enabled = device.type == "cuda"
    if not enabled or not DeferredWeightGrads.needed(model.update_block):
        return None
    return DeferredWeightGrads(model.update_block, _compute_dtype(model, device))


def _compute_dtype(model: nn.Module, device: torch.device) -> torch.dtype:
    """The dtype the update block's layers compute in: autocast's, else the weights'."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return model.proj_cmb.weight.dtype
