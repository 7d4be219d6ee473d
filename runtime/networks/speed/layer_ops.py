"""How the refinement update applies its weighted layers: plainly, or tapped for deferred weight gradients.

The update block's modules call their convolutions and linear layers through a :class:`LayerOps`
object instead of calling the modules: :data:`PLAIN` computes exactly what the modules compute (and
fuses convolutions that read the same input into one, :meth:`LayerOps.conv`). A training forward
passes :class:`TappedOps` instead (:mod:`deferred_weight_grads`): every layer computes with its
parameters detached, so the compiled backward computes no weight gradients, adds a zero "tap" to its
output, whose gradient is the layer's output gradient, and records its input. The weight gradients
are then computed from those pairs outside the compiled iteration.

Layers are known by ``grad_key``, the attribute :func:`tag_layers` sets on them (their names under
the update block).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PLAIN", "LayerOps", "TappedOps", "fused_key", "skipped_key", "tag_layers", "tapped_layers"]

Layer = nn.Conv2d | nn.Linear


class LayerOps:
    """The plain layers."""

    def conv(self, x: torch.Tensor, convs: Sequence[nn.Conv2d], skip: int = 0) -> torch.Tensor:
        """``cat([conv(x) for conv in convs], dim=1)`` as one convolution (same kernel, stride,
        padding, groups and bias presence): one forward, one input-gradient and one weight-gradient
        kernel instead of one each per conv. The parameters stay separate, under TAO's names.
        ``skip``: ``x`` holds only the input channels after the first ``skip`` (whose share of the
        output the caller computes once and adds: an input the same in every iteration)."""
        weight, bias = _cat_params(convs)
        return _conv(x, convs[0], weight[:, skip:] if skip else weight, bias)

    def linear(self, x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
        return F.linear(x, layer.weight, layer.bias)


PLAIN = LayerOps()


class TappedOps(LayerOps):
    """Layers with detached parameters whose outputs carry a zero tap; ``inputs`` collects what each
    layer read. ``taps`` maps ``grad_key`` to a zero tensor of the layer's output shape (any strides);
    a layer without a tap (its parameters are frozen) computes plainly."""

    def __init__(self, taps: dict[str, torch.Tensor],
                 params: dict[str, list[torch.Tensor]] | None = None) -> None:
        self.taps = taps
        #: per ``grad_key``: [weight, bias] detached, cast once per forward to the compute dtype (else
        #: autocast casts every parameter again in every iteration: ~33 tiny kernels each for bp2)
        self.params = params or {}
        self.inputs: dict[str, torch.Tensor] = {}

    def _detached(self, layers: Sequence[Layer]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The layers' (concatenated) weight and bias, detached: the pre-cast ones where given."""
        fused = fused_key(layers)
        if fused in self.params:                 # a fused convolution's parameters, concatenated once
            parts = [self.params[fused]]
        elif all(layer.grad_key in self.params for layer in layers):
            parts = [self.params[layer.grad_key] for layer in layers]
        else:
            weight, bias = _cat_params(layers)
            return weight.detach(), None if bias is None else bias.detach()
        if len(parts) == 1:
            return parts[0][0], parts[0][1] if len(parts[0]) > 1 else None
        weight = torch.cat([p[0] for p in parts])
        return weight, torch.cat([p[1] for p in parts]) if len(parts[0]) > 1 else None

    def _tapped(self, layers: Sequence[Layer]) -> bool:
        return all(layer.grad_key in self.taps for layer in layers)

    def conv(self, x: torch.Tensor, convs: Sequence[nn.Conv2d], skip: int = 0) -> torch.Tensor:
        if not self._tapped(convs):
            return super().conv(x, convs, skip)
        sliced = self.params.get(skipped_key(fused_key(convs), skip)) if skip else None
        if sliced is not None:             # the input channels' slice, made contiguous once per forward
            weight, bias = sliced[0], sliced[1] if len(sliced) > 1 else None
        else:                              # (the recorded input's channels are the last ones)
            weight, bias = self._detached(convs)
            weight = weight[:, skip:] if skip else weight
        y = _conv(x, convs[0], weight, bias)
        read = x.detach()                  # (detached: no zero gradient to feed back)
        for conv in convs:
            self.inputs[conv.grad_key] = read
        return _tap(y, [self.taps[conv.grad_key] for conv in convs], dim=1)

    def linear(self, x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
        if not self._tapped([layer]):
            return super().linear(x, layer)
        weight, bias = self._detached([layer])
        self.inputs[layer.grad_key] = x.detach()
        return _tap(F.linear(x, weight, bias), [self.taps[layer.grad_key]], dim=-1)


def fused_key(layers: Sequence[Layer]) -> str:
    """The key of layers applied as one fused convolution (``"a+b"``; a single layer's own key)."""
    return "+".join(layer.grad_key for layer in layers)


def skipped_key(key: str, skip: int) -> str:
    """The key of a layer's parameters for an input without its first ``skip`` channels
    (:meth:`LayerOps.conv`'s ``skip``): its weight's slice of the remaining input channels."""
    return f"{key}[{skip}:]"


def _tap(y: torch.Tensor, taps: list[torch.Tensor], dim: int) -> torch.Tensor:
    """``y`` plus its zero taps (concatenated along the output channels ``dim`` of a fused layer)."""
    return y + (taps[0] if len(taps) == 1 else torch.cat(taps, dim=dim))


def _cat_params(convs: Sequence[Layer]) -> tuple[torch.Tensor, torch.Tensor | None]:
    if len(convs) == 1:
        return convs[0].weight, convs[0].bias
    weight = torch.cat([c.weight for c in convs])
    bias = torch.cat([c.bias for c in convs]) if convs[0].bias is not None else None
    return weight, bias


def _conv(x: torch.Tensor, conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def tag_layers(module: nn.Module, exclude: tuple[str, ...] = ()) -> None:
    """Name every Conv2d and Linear under ``module`` (``grad_key``: its name under ``module``), but
    those under the submodules named in ``exclude`` (they are not applied through :class:`LayerOps`)."""
    for name, layer in module.named_modules():
        if isinstance(layer, nn.Conv2d | nn.Linear) and not name.startswith(tuple(f"{e}." for e in exclude)):
            layer.grad_key = name


def tapped_layers(module: nn.Module) -> dict[str, Layer]:
    """The tagged layers under ``module`` whose parameters all train: the ones a :class:`TappedOps`
    taps. Their convolutions must keep the spatial size (stride 1, 'same' padding)."""
    layers: dict[str, Layer] = {}
    for layer in module.modules():
        key = getattr(layer, "grad_key", None)
        if key is None or not all(p.requires_grad for p in layer.parameters(recurse=False)):
            continue
        if isinstance(layer, nn.Conv2d) and (
                tuple(layer.stride) != (1, 1) or tuple(layer.dilation) != (1, 1)
                or tuple(2 * p + 1 for p in layer.padding) != tuple(layer.kernel_size)):
            raise ValueError(f"{key}: a tapped convolution must keep the spatial size (stride 1, "
                             f"padding k // 2), got {layer}")
        layers[key] = layer
    return layers
