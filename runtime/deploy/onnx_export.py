"""Export a depth network to an fp32 ONNX graph and check it with onnxruntime.

Four cases (docs/runtime.md, "export"): static [B,3,H,W]; dynamic batch (batch_size -1); dynamic
H/W (FastFoundationStereo only: FoundationStereo and DepthAnything bake the ViT positional embedding
into the graph, so they warn and fall back to static); both. Precision is chosen when an engine is
built; the graph is always fp32. The refinement iterations are unrolled into the graph.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skillbank.atomic import commit, temp_beside

log = logging.getLogger("depth_net")


class StereoExportWrapper(nn.Module):
    """(left, right) -> disparity with a fixed number of refinement iterations."""

    def __init__(self, model: nn.Module, iters: int) -> None:
        super().__init__()
        self.model = model
        self.iters = iters

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return self.model(left, right, iters=self.iters, test_mode=True)


class MonoExportWrapper(nn.Module):
    """image -> depth."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image)


@dataclass
class ExportReport:
    onnx_file: Path
    input_names: list[str]
    input_shape: list[int | str]
    dynamic_batch: bool
    dynamic_hw: bool
    opset: int
    iters: int | None
    ort_max_abs_diff: float | None
    ort_mean_abs_diff: float | None
    notes: list[str]


def export_onnx(
    model: nn.Module,
    onnx_file: Path,
    *,
    stereo: bool,
    height: int,
    width: int,
    batch_size: int = 1,
    dynamic_hw: bool = False,
    opset: int = 17,
    iters: int | None = None,
    verify: bool = True,
    seed: int = 0,
) -> ExportReport:
    """Trace ``model`` on CPU (fp32) and write ``onnx_file`` atomically; compare onnxruntime with PyTorch."""
    model = model.float().eval()
    wrapper: nn.Module = StereoExportWrapper(model, iters or 1) if stereo else MonoExportWrapper(model)
    # eval() on the wrapper itself: torch.onnx.export restores the wrapper's own mode afterwards, and a
    # fresh wrapper is in training mode, which would put BatchNorm back into batch statistics.
    wrapper.eval()
    names = ["left", "right"] if stereo else ["image"]
    batch = max(batch_size, 1)
    gen = torch.Generator().manual_seed(seed)
    inputs = tuple(torch.randn(batch, 3, height, width, generator=gen) for _ in names)
    axes: dict[str, dict[int, str]] = {}
    for name in [*names, "output"]:
        spec: dict[int, str] = {}
        if batch_size == -1:
            spec[0] = "batch"
        if dynamic_hw:
            spec[2], spec[3] = "height", "width"
        if spec:
            axes[name] = spec
    tmp = temp_beside(onnx_file, ".onnx")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                inputs,
                tmp,
                input_names=names,
                output_names=["output"],
                opset_version=opset,
                dynamic_axes=axes or None,
                do_constant_folding=True,
                dynamo=False,
            )
        commit(tmp, onnx_file)
    finally:
        tmp.unlink(missing_ok=True)
    notes: list[str] = []
    max_diff = mean_diff = None
    if verify:
        max_diff, mean_diff = compare_with_onnxruntime(wrapper, onnx_file, inputs)
        notes.append(f"onnxruntime vs PyTorch: max |diff| {max_diff:.2e}, mean {mean_diff:.2e}")
    shape: list[int | str] = ["batch" if batch_size == -1 else batch, 3]
    shape += ["height", "width"] if dynamic_hw else [height, width]
    return ExportReport(onnx_file, names, shape, batch_size == -1, dynamic_hw, opset, iters, max_diff, mean_diff, notes)


def compare_with_onnxruntime(
    wrapper: nn.Module, onnx_file: Path, inputs: tuple[torch.Tensor, ...]
) -> tuple[float, float]:
    """Max and mean |onnxruntime - PyTorch| on ``inputs``."""
    import onnxruntime as ort

    with torch.no_grad():
        ref = wrapper(*inputs).numpy()
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs, strict=True)}
    out = session.run(None, feeds)[0]
    diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    return float(diff.max()), float(diff.mean())
