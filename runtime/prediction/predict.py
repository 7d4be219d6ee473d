"""What evaluate and inference share: the network or engine to run, batched prediction, output names.

* :func:`prepare_model`: build the spec's network, load ``<action>.checkpoint`` (a file, or a train
  results folder: its newest epoch/step checkpoint), eval mode, on the chosen device, then the path
  :func:`.fast_path.plan_fast_path` picks (on a GPU the fast path unless ``optimize: false``); or open
  ``<action>.trt_engine`` (:mod:`..deploy.engines`). Either way the result is a :class:`.fast_path.Predictor`
  that times every call (``ms_per_pair``).
* :func:`predict_batch`: stereo -> disparity (B,1,H,W) with ``model.valid_iters`` iterations; mono ->
  depth / inverse depth (B,1,H,W); fp32, no autograd.
* :func:`unique_output_names`: file stems from input paths without collisions: the file's stem, and
  as many parent folder names as needed to tell the paths apart (``teddy/im0.png`` and
  ``cones/im0.png`` -> ``teddy_im0`` and ``cones_im0``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from skillbank.runtime.errors import ConfigurationError, DependencyError, FileSystemError
from skillbank.runtime.prediction.fast_path import FastPathPlan, Predictor, plan_fast_path
from skillbank.runtime.training.devices import eval_device
from skillbank.runtime.training.weights import build_model, load_weights, resolve_weights

log = logging.getLogger("depth_net")


def prepare_model(spec: Any, action: str) -> tuple[Predictor, torch.device, str]:
    """(predictor around the model in eval mode on its device, device, one-line load report)."""
    section = getattr(spec, action)
    device = eval_device(section.num_gpus, list(section.gpu_ids))
    if not section.checkpoint:
        if section.trt_engine:
            return _prepare_engine(section.trt_engine, action, device)
        raise ConfigurationError(f"{action}.checkpoint: required (the model to run)")
    path = resolve_weights(section.checkpoint, f"{action}.checkpoint")
    model = build_model(spec)
    report = load_weights(model, path, f"{action}.checkpoint")
    model.to(device).eval()
    plan = plan_fast_path(section, action=action, device_type=device.type, model_type=spec.model.model_type)
    if plan.note:
        log.info("%s", plan.note)
    if plan.transforms or plan.cuda_graph:
        log.info("%s: %s", action, plan.describe())
    model = _apply_plan(model, plan, section, action)
    if device.type == "cuda" and plan.cuda_graph:
        # one shape per graph: cuDNN picks its fastest kernels during the warm-up, the graph keeps them
        torch.backends.cudnn.benchmark = True
    hooks = _compile_cache_hooks(spec, plan, device) if plan.compile else {}
    predictor = Predictor(model, device=device, cuda_graph=plan.cuda_graph, warm_first_call=plan.compile, **hooks)
    predictor.plan = plan
    return predictor, device, report


def _apply_plan(model: torch.nn.Module, plan: FastPathPlan, section: Any, action: str) -> torch.nn.Module:
    if not plan.transforms:
        return model
    from skillbank.runtime.networks.speed.fast_inference import optimize_for_inference

    try:
        return optimize_for_inference(model, optimize=plan.optimize, precision=plan.precision, compile=plan.compile)
    except ValueError as exc:
        set_keys = [k for k in ("optimize", "compile") if getattr(section, k, None)] + ["precision"]
        key = "precision" if str(exc).startswith("precision") else set_keys[0]
        raise ConfigurationError(f"{action}.{key}: {exc}") from None


def _compile_cache_hooks(spec: Any, plan: FastPathPlan, device: torch.device) -> dict[str, Any]:
    """Predictor hooks that load the mega-cache of a model and shape before its first call and save it after."""
    from skillbank.runtime import compile_cache

    folder = compile_cache.prepare_compile_caches()
    model_spec = spec.model.model_dump(mode="json")
    versions = compile_cache.runtime_versions()

    def key(shape: tuple[int, ...]) -> str:
        return compile_cache.cache_key(model_spec, precision=plan.precision, shapes=[shape], device=device.type,
                                       versions=versions)

    def before(shape: tuple[int, ...]) -> None:
        warm = compile_cache.load_mega_cache(key(shape))
        log.info("compile cache %s (%s): %s", "warm" if warm else "cold", folder, key(shape))

    def after(shape: tuple[int, ...]) -> None:
        compile_cache.save_mega_cache(key(shape))

    return {"on_new_shape": before, "after_first_call": after}


def prepare_run(spec: Any, action: str, split: str) -> tuple[Any, Any, Any, torch.device]:
    """(dataset, loader, model, device) of evaluate/inference: ``dataset.<split>`` at native size or at
    ``<action>.input_height`` x ``input_width``, batched by ``<action>.batch_size``, and the model of
    ``<action>.checkpoint`` (or ``<action>.trt_engine``)."""
    from skillbank.runtime.data.loaders import make_loader
    from skillbank.runtime.data.splits import build_split_dataset

    cfg = getattr(spec, action)
    size = (cfg.input_height, cfg.input_width) if cfg.input_height else None
    dataset = build_split_dataset(spec, split, train=False, eval_size=size)
    loader = make_loader(dataset, getattr(spec.dataset, split), train=False, batch_size=cfg.batch_size)
    model, device, _ = prepare_model(spec, action)
    return dataset, loader, model, device


def _prepare_engine(path: str, action: str, device: torch.device) -> tuple[Predictor, torch.device, str]:
    """The deploy side: ``.pt2`` (AOTInductor), ``.onnx`` (onnxruntime) or a TensorRT engine
    (:mod:`..deploy.engines`); a wrong kind or an unreadable file fails with one line naming the key."""
    from skillbank.runtime.deploy.engines import EngineModule, UnknownEngineKind, engine_kind
    from skillbank.runtime.deploy.trt_build import TensorRTMissing

    if not Path(path).is_file():
        raise FileSystemError(f"{action}.trt_engine: file not found: {path}")
    try:
        engine_kind(path)
        engine = EngineModule(path, action=action, device=device)
    except UnknownEngineKind as exc:
        raise ConfigurationError(f"{action}.trt_engine: {exc}") from None
    except TensorRTMissing as exc:
        raise DependencyError(f"{action}.trt_engine: {exc}") from None
    except Exception as exc:  # a corrupt or foreign file: one line naming the key
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(f"{action}.trt_engine: cannot load {path}: {first}") from None
    # engines run as they are: an AOTInductor runner captured in a CUDA graph cannot be called directly again
    # (its completion event was recorded in the capture), so a second input shape would fail
    if engine.device.type == "cuda" and engine.engine.kind == "AOTInductor":
        torch.backends.cudnn.benchmark = True   # a static-shape package: the convolutions' fastest kernels
    predictor = Predictor(engine, device=engine.device)
    predictor.plan = None
    return predictor, engine.device, f"engine {Path(path).name} ({engine.engine.kind})"


def is_engine(model: Any) -> bool:
    """True when evaluate/inference run a deployed engine rather than a PyTorch checkpoint."""
    from skillbank.runtime.deploy.engines import EngineModule

    return isinstance(getattr(model, "model", model), EngineModule)


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
