"""BatchNorm folded into the convolution before it: an inference-only transform of a loaded network.

Fewer kernels and memory passes, identical results up to fp32 rounding; the state_dict changes (the
norms disappear, biases appear). :func:`~skillbank.runtime.networks.speed.fast_inference.optimize_for_inference`
applies it.
"""

from __future__ import annotations

import torch
from torch import nn

from skillbank.runtime.networks.common.blocks import ConvNormAct, ResidualBlock


def _fold_into_conv(conv: nn.Module, bn: nn.Module) -> None:
    """Rewrite ``conv`` so that ``conv(x) == bn(conv_old(x))`` for a BatchNorm in eval mode."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    transposed = isinstance(conv, (nn.ConvTranspose2d, nn.ConvTranspose3d))
    view = [1] * conv.weight.dim()
    view[1 if transposed else 0] = -1
    if transposed and conv.groups != 1:
        raise ValueError("folding BatchNorm into a grouped transposed conv is not supported")
    with torch.no_grad():
        conv.weight.mul_(scale.view(view))
        bias = shift if conv.bias is None else conv.bias * scale + shift
        conv.bias = nn.Parameter(bias.detach().clone())


def fold_batchnorm_(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm that directly follows a convolution into that convolution.

    An inference-only transform (fewer kernels and memory passes, identical results up to fp32
    rounding): call it after loading weights and ``model.eval()``. It changes the state_dict
    (the norms disappear, biases appear), so keep an unfolded copy for checkpoints and training.
    Handles :class:`ConvNormAct`, :class:`ResidualBlock` and ``Sequential(conv, BatchNorm, ...)``.
    """
    if model.training:
        raise ValueError("fold_batchnorm_ needs a model in eval mode (BatchNorm must use running stats)")
    convs = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    bns = (nn.BatchNorm2d, nn.BatchNorm3d)
    for module in model.modules():
        if isinstance(module, ConvNormAct) and isinstance(module.norm, bns):
            _fold_into_conv(module.conv, module.norm)
            module.norm = None
        elif isinstance(module, ResidualBlock):
            for conv_name, bn_name in (("conv1", "bn1"), ("conv2", "bn2")):
                if isinstance(getattr(module, bn_name), bns):
                    _fold_into_conv(getattr(module, conv_name), getattr(module, bn_name))
                    setattr(module, bn_name, nn.Identity())
        elif isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if isinstance(module[i], convs) and isinstance(module[i + 1], bns):
                    _fold_into_conv(module[i], module[i + 1])
                    module[i + 1] = nn.Identity()
    return model
