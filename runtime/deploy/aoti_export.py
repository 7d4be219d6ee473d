"""Export a depth network as an AOTInductor package (``.pt2``): ``torch.export`` + Inductor ahead of time.

The package holds compiled kernels for one device (a CUDA GPU, or the CPU with a C++ compiler) and the
weights; :class:`.engines.AOTIEngine` loads it with ``torch._inductor.aoti_load_package`` and needs
nothing but torch there. APIs used (present in torch 2.11 and 2.13): ``torch.export.export(module, args,
dynamic_shapes=...)``, ``torch.export.Dim``, ``torch._inductor.aoti_compile_and_package(ep,
package_path=..., inductor_configs=...)``; the package's ``aot_inductor.metadata`` carries what the
engine runner checks inputs against (:data:`META_KEYS`).

Shapes: static H/W (the export size); the batch axis is dynamic with ``batch_size: -1``
(``Dim("batch", min=1, max=MAX_BATCH)``, traced at batch 2 so that it is not specialised to 1): the
networks' forward has no batch-dependent Python branch, so one package serves every batch size.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from skillbank.atomic import temp_beside

log = logging.getLogger("depth_net")

MAX_BATCH = 64
#: metadata keys written into the package (values are strings)
META_KEYS = ("depth_net.stereo", "depth_net.input_shape", "depth_net.precision", "depth_net.iters",
             "depth_net.model_type", "depth_net.optimized")


class _Deploy(nn.Module):
    def __init__(self, model: nn.Module, iters: int | None) -> None:
        super().__init__()
        self.model, self.iters = model, iters

    def _cast(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(next(self.model.parameters()).dtype)


class StereoDeploy(_Deploy):
    """(left, right) fp32 -> fp32 disparity (B,1,H,W) with ``iters`` refinement iterations, any weight dtype."""

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return self.model(self._cast(left), self._cast(right), iters=self.iters, test_mode=True).float()


class MonoDeploy(_Deploy):
    """image fp32 -> fp32 depth (B,1,H,W), any weight dtype."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(self._cast(image)).float()


def DeployWrapper(model: nn.Module, *, stereo: bool, iters: int | None) -> nn.Module:  # noqa: N802 - a factory
    """The module ``torch.export`` traces: :class:`StereoDeploy` or :class:`MonoDeploy`."""
    return StereoDeploy(model, iters) if stereo else MonoDeploy(model, iters)


@dataclass
class AotiBuild:
    """A package built at ``tmp_file`` (not yet at its final name: the drift check decides)."""

    tmp_file: Path
    input_shape: list[int]  # -1 for a dynamic batch axis
    metadata: dict[str, str]
    export_s: float
    compile_s: float


def export_aoti(
    model: nn.Module,
    target: Path,
    *,
    stereo: bool,
    height: int,
    width: int,
    batch_size: int,
    iters: int | None,
    device: torch.device,
    metadata: dict[str, str],
    autotune: bool = False,
) -> AotiBuild:
    """``torch.export`` ``model`` (already on ``device``, in eval mode, with its inference rewrites and
    precision applied) and compile it to a package in ``target``'s folder under a temporary name."""
    import time

    wrapper = DeployWrapper(model, stereo=stereo, iters=iters).eval()
    dynamic = batch_size == -1
    trace_batch = 2 if dynamic else batch_size
    gen = torch.Generator().manual_seed(0)
    inputs = tuple(torch.randn(trace_batch, 3, height, width, generator=gen).to(device)
                   for _ in range(2 if stereo else 1))
    dynamic_shapes: Any = None
    if dynamic:
        batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        dynamic_shapes = tuple({0: batch} for _ in inputs)
    t0 = time.perf_counter()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(wrapper, inputs, dynamic_shapes=dynamic_shapes)
    export_s = time.perf_counter() - t0
    shape = [-1 if dynamic else batch_size, 3, height, width]
    meta = {**metadata, "depth_net.stereo": str(int(stereo)), "depth_net.input_shape": ",".join(map(str, shape)),
            "depth_net.iters": str(iters or 0)}
    configs: dict[str, Any] = {"aot_inductor.metadata": meta}
    if autotune:
        configs["max_autotune"] = True
    tmp = temp_beside(target, ".pt2")
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch._inductor.aoti_compile_and_package(program, package_path=str(tmp), inductor_configs=configs)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return AotiBuild(tmp, shape, meta, export_s, time.perf_counter() - t0)
