"""Build a TensorRT engine from the exported ONNX graph (TensorRT 10 Python API).

Calls, in order (TensorRT 10 signatures): ``Builder(logger)``, ``builder.create_network(0)`` (explicit
batch is the only mode), ``OnnxParser(network, logger).parse(bytes)``, ``builder.create_builder_config()``,
``config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes)``, ``config.set_flag(BuilderFlag.FP16 /
BF16)``, ``builder.create_optimization_profile()`` + ``profile.set_shape(name, min, opt, max)`` +
``config.add_optimization_profile(profile)`` for every dynamic input, ``config.create_timing_cache(blob)``
+ ``config.set_timing_cache(cache, ignore_mismatch=False)``, ``builder.build_serialized_network(network,
config)``. Tested against a stand-in module that checks these signatures (``tests/deploy/fake_tensorrt.py``);
the real-TensorRT test runs where ``import tensorrt`` works. Without ``tensorrt`` the action fails with a
Dependency error.

Files: the engine is written atomically to the given path; the timing cache (if named) is read before
the build and rewritten atomically after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillbank.atomic import atomic_write

log = logging.getLogger("depth_net")


class TensorRTMissing(ImportError):
    """The tensorrt package is not installed."""


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTMissing(
            "the tensorrt package is not installed (pip install tensorrt from NVIDIA's index on a machine "
            "with a CUDA GPU); the ONNX file is ready for trtexec or a later gen_trt_engine run"
        ) from exc
    return trt


@dataclass
class ShapeProfile:
    """min/opt/max shape of one input."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]


#: gen_trt_engine.tensorrt.data_type -> the BuilderFlag names it sets
PRECISION_FLAGS = {"FP32": (), "FP16": ("FP16",), "BF16": ("BF16",)}


@dataclass
class BuildSettings:
    precision: str = "FP16"
    workspace_gib: int = 8
    profiles: list[ShapeProfile] = field(default_factory=list)
    layers_precision: list[str] = field(default_factory=list)  # "layer_name:fp32"
    timing_cache: Path | None = None


def build_engine(onnx_file: Path, engine_file: Path, settings: BuildSettings) -> Path:
    """Parse ``onnx_file``, build a serialized engine and write it atomically to ``engine_file``."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_file.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_file}: TensorRT could not parse the ONNX graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_gib << 30)
    for flag in PRECISION_FLAGS[settings.precision]:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if settings.profiles:
        profile = builder.create_optimization_profile()
        for p in settings.profiles:
            profile.set_shape(p.name, p.min, p.opt, p.max)
        config.add_optimization_profile(profile)
    _apply_layer_precisions(trt, network, config, settings.layers_precision)
    cache = None
    if settings.timing_cache is not None:
        blob = settings.timing_cache.read_bytes() if settings.timing_cache.exists() else b""
        cache = config.create_timing_cache(blob)
        config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"{onnx_file}: TensorRT failed to build an engine (see the log above)")
    atomic_write(engine_file, bytes(serialized))
    if cache is not None and settings.timing_cache is not None:
        atomic_write(settings.timing_cache, bytes(config.get_timing_cache().serialize()))
    return engine_file


def _apply_layer_precisions(trt: Any, network: Any, config: Any, rules: list[str]) -> None:
    if not rules:
        return
    wanted = {}
    for rule in rules:
        name, _, precision = rule.partition(":")
        types = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
        key = precision.strip().lower() or "fp32"
        if not name.strip() or key not in types:
            raise ValueError(f"{rule!r}: expected 'layer_name:fp32' (or :fp16, :bf16)")
        wanted[name.strip()] = getattr(trt, types[key])
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        for name, dtype in wanted.items():
            if name in layer.name:
                layer.precision = dtype
                for j in range(layer.num_outputs):
                    layer.set_output_type(j, dtype)
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
