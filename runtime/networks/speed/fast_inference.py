"""The fast inference path of FastFoundationStereo, as the H100 benchmark runs it.

:func:`optimize_for_inference` applies, to a loaded model in eval mode, in this order:

1. ``optimize``: BatchNorm folded into the convolutions (:func:`fold_batchnorm.fold_batchnorm_`), the
   pruned widths zero-padded to multiples of 8 (:func:`channel_padding.pad_channels_`), and on a GPU
   channels-last weights. All exact up to fp32 rounding.
2. ``precision``: weights (and so activations) in fp16 or bf16; the correlations, the lookup, the
   soft-argmin and the convex upsampling stay fp32 inside the network. GPU only.
3. ``compile``: ``torch.compile`` of the encoder and of one refinement iteration
   (:meth:`FastFoundationStereo.compile_regions`). It compiles once per input size (tens of seconds
   on an H100), so it pays off for many pairs of one size (set ``input_height``/``input_width``).

evaluate and inference apply all three on a GPU by default, with a CUDA graph per input shape
(:mod:`skillbank.runtime.prediction.fast_path`); ``depth_net export`` with ``format: aoti`` applies
``optimize`` and ``precision`` before compiling the whole forward ahead of time.

Measured on an H100 (``benchmarks/results/ffs_inference_h100.json``, 480x736, 8 iterations):
eager fp32 57 ms; all three plus a CUDA graph 9.2 ms, within 0.007 px of fp32.
The state_dict changes shape (folded norms, padded widths): keep the checkpoint for training.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def optimize_for_inference(model: nn.Module, *, optimize: bool = True, precision: str = "fp32",
                           compile: bool = False, **compile_kwargs: Any) -> nn.Module:
    """Apply the fast inference transforms to a loaded FastFoundationStereo (see the module doc).

    Returns the same module. Raises ``ValueError`` naming the argument for a model in training
    mode, another network, an unknown precision or half precision on a CPU model.
    """
    from skillbank.runtime.networks.ffs.model import FastFoundationStereo
    from skillbank.runtime.networks.speed.channel_padding import pad_channels_
    from skillbank.runtime.networks.speed.fold_batchnorm import fold_batchnorm_

    if precision not in PRECISIONS:
        raise ValueError(f"precision: {precision!r} is not one of {sorted(PRECISIONS)}")
    if not (optimize or compile or precision != "fp32"):
        return model
    if not isinstance(model, FastFoundationStereo):
        raise ValueError(f"the inference fast path is built for FastFoundationStereo, not {type(model).__name__}")
    if model.training:
        raise ValueError("the inference fast path needs a model in eval mode")
    cuda = next(model.parameters()).is_cuda
    if precision != "fp32" and not cuda:
        raise ValueError(f"precision: {precision} needs the model on a GPU (num_gpus >= 1); CPUs run fp32")
    if optimize:
        fold_batchnorm_(model)
        pad_channels_(model)
    if precision != "fp32":
        model.to(PRECISIONS[precision])
    if optimize and cuda:
        model.to_channels_last()
    if compile:
        model.compile_regions(**compile_kwargs)
    return model
