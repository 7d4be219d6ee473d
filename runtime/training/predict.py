"""What evaluate and inference share: a ready network on a device, batched prediction, output names.

* :func:`prepare_model`: build the spec's network, load ``<action>.checkpoint`` (a file, or a train
  results folder: its newest epoch/step checkpoint), eval mode, on the chosen device; then the
  fast path the section asks for (``optimize``, ``precision``, ``compile``).
* :func:`predict_batch`: stereo -> disparity (B,1,H,W) with ``model.valid_iters`` iterations; mono ->
  depth / inverse depth (B,1,H,W); fp32, no autograd.
* :func:`unique_output_names`: file stems from input paths without collisions: the file's stem, and
  as many parent folder names as needed to tell the paths apart (``teddy/im0.png`` and
  ``cones/im0.png`` -> ``teddy_im0`` and ``cones_im0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigurationError, DependencyError, FileSystemError
from .devices import eval_device
from .weights import build_model, load_weights, resolve_weights


def prepare_model(spec: Any, action: str) -> tuple[torch.nn.Module, torch.device, str]:
    """(model in eval mode on its device, device, one-line load report) for evaluate/inference."""
    section = getattr(spec, action)
    if not section.checkpoint:
        if section.trt_engine:
            return _prepare_engine(section.trt_engine, action)
        raise ConfigurationError(f"{action}.checkpoint: required (the model to run)")
    path = resolve_weights(section.checkpoint, f"{action}.checkpoint")
    model = build_model(spec)
    report = load_weights(model, path, f"{action}.checkpoint")
    device = eval_device(section.num_gpus, list(section.gpu_ids))
    model.to(device).eval()
    return _fast_path(model, section, action), device, report


def _fast_path(model: torch.nn.Module, section: Any, action: str) -> torch.nn.Module:
    """``<action>.optimize`` / ``precision`` / ``compile``: :func:`networks.fast_inference.optimize_for_inference`."""
    if not (section.optimize or section.compile or section.precision != "fp32"):
        return model
    from ..networks.fast_inference import optimize_for_inference

    try:
        return optimize_for_inference(model, optimize=section.optimize, precision=section.precision,
                                      compile=section.compile)
    except ValueError as exc:
        set_keys = [k for k in ("optimize", "compile") if getattr(section, k)] + ["precision"]
        key = "precision" if str(exc).startswith("precision") else set_keys[0]
        raise ConfigurationError(f"{action}.{key}: {exc}") from None


def prepare_run(spec: Any, action: str, split: str) -> tuple[Any, Any, Any, torch.device]:
    """(dataset, loader, model, device) of evaluate/inference: ``dataset.<split>`` at native size or at
    ``<action>.input_height`` x ``input_width``, batched by ``<action>.batch_size``, and the model of
    ``<action>.checkpoint`` (or ``<action>.trt_engine``)."""
    from .data import build_split_dataset, make_loader

    cfg = getattr(spec, action)
    size = (cfg.input_height, cfg.input_width) if cfg.input_height else None
    dataset = build_split_dataset(spec, split, train=False, eval_size=size)
    loader = make_loader(dataset, getattr(spec.dataset, split), train=False, batch_size=cfg.batch_size)
    model, device, _ = prepare_model(spec, action)
    return dataset, loader, model, device


def _prepare_engine(path: str, action: str) -> tuple[Any, torch.device, str]:
    """The deploy side: an exported .onnx (onnxruntime, exercised) or a TensorRT engine (written against
    the TensorRT 10 API, not exercised where this was built)."""
    from ..deploy.engines import EngineModule
    from ..deploy.trt_build import TensorRTMissing

    if not Path(path).is_file():
        raise FileSystemError(f"{action}.trt_engine: file not found: {path}")
    try:
        engine = EngineModule(path, action=action)
    except TensorRTMissing as exc:
        raise DependencyError(f"{action}.trt_engine: {exc}") from None
    except Exception as exc:  # a corrupt or foreign file: one line naming the key
        raise ConfigurationError(f"{action}.trt_engine: cannot load {path}: {exc}") from None
    return engine, torch.device("cpu"), f"engine {Path(path).name} ({type(engine.engine).__name__})"


def is_engine(model: Any) -> bool:
    """True when evaluate/inference run a deployed engine rather than a PyTorch checkpoint."""
    from ..deploy.engines import EngineModule

    return isinstance(model, EngineModule)


@torch.inference_mode()
def predict_batch(model: torch.nn.Module, batch: dict[str, Any], spec: Any, device: torch.device) -> torch.Tensor:
    """The network's (B,1,H,W) float32 output for a collated batch, on the CPU."""
    if spec.model.is_stereo:
        left = batch["left"].to(device, non_blocking=True)
        right = batch["right"].to(device, non_blocking=True)
        out = model(left, right, iters=spec.model.valid_iters, test_mode=True)
    else:
        out = model(batch["image"].to(device, non_blocking=True))
    return out.float().cpu()


def unique_output_names(paths: Sequence[str | Path]) -> list[str]:
    """Collision-free names (no extension) derived from ``paths``; see the module docstring."""
    parts = [tuple(x for x in Path(p).with_suffix("").parts if x not in ("/", "\\")) for p in paths]
    depth = [1] * len(parts)
    while True:
        names = ["_".join(p[-d:]) for p, d in zip(parts, depth, strict=True)]
        seen: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            seen.setdefault(name, []).append(i)
        clashes = [idx for idx in seen.values() if len(idx) > 1]
        if not clashes:
            return [n.replace(" ", "_") for n in names]
        grown = False
        for group in clashes:
            for i in group:
                if depth[i] < len(parts[i]):
                    depth[i] += 1
                    grown = True
        if not grown:  # the same path listed twice: stem plus the sample's position
            pairs = enumerate(zip(parts, names, strict=True))
            return [f"{p[-1]}_{i:05d}" if len(seen[n]) > 1 else n for i, (p, n) in pairs]
