"""A stand-in ``tensorrt`` module: the TensorRT 10 Python API surface that depth_net uses, with its
documented signatures, recording every call.

Each method takes the parameters the TensorRT 10 Python API documents (names and types below) and raises
``TypeError`` for anything else, so a call written against another TensorRT version (``max_workspace_size``,
``build_engine``, ``execute_async_v2``, bindings, an ``EXPLICIT_BATCH`` flag, ...) fails here as it would
there. Documented signatures checked:

* ``Builder(logger: ILogger)``; ``Builder.create_network(flags: int = 0) -> INetworkDefinition``;
  ``create_builder_config() -> IBuilderConfig``; ``create_optimization_profile() -> IOptimizationProfile``;
  ``build_serialized_network(network, config) -> IHostMemory | None``
* ``OnnxParser(network, logger)``; ``parse(model: bytes, path: str = None) -> bool``; ``num_errors``;
  ``get_error(index: int) -> IParserError``
* ``IBuilderConfig.set_memory_pool_limit(pool: MemoryPoolType, pool_size: int)``;
  ``set_flag(flag: BuilderFlag)``; ``add_optimization_profile(profile) -> int``;
  ``create_timing_cache(serialized_timing_cache: buffer) -> ITimingCache``;
  ``set_timing_cache(cache: ITimingCache, ignore_mismatch: bool) -> bool``; ``get_timing_cache() -> ITimingCache``
* ``IOptimizationProfile.set_shape(input: str, min: Dims, opt: Dims, max: Dims)`` (same rank, min <= opt <= max)
* ``Runtime(logger)``; ``deserialize_cuda_engine(serialized_engine: buffer) -> ICudaEngine``
* ``ICudaEngine.num_io_tensors``, ``get_tensor_name(index)``, ``get_tensor_mode(name) -> TensorIOMode``,
  ``get_tensor_shape(name) -> Dims`` (-1 = dynamic), ``get_tensor_profile_shape(name, profile_index) ->
  [min, opt, max]``, ``create_execution_context()``
* ``IExecutionContext.set_input_shape(name, shape) -> bool``, ``set_tensor_address(name, memory: int) -> bool``,
  ``get_tensor_shape(name) -> Dims``, ``execute_async_v3(stream_handle: int) -> bool``

The "engine" it builds is a JSON header (what the build asked for) plus the ONNX bytes; executing it
runs the graph with onnxruntime on host memory at the tensor addresses (so the engine runner's buffer
handling is exercised on a CPU). ``OUTPUT_OFFSET`` adds a constant to every output (a drifting engine).
"""

from __future__ import annotations

import ctypes
import enum
import json
from typing import Any

import numpy as np

CALLS: list[tuple[str, tuple, dict]] = []
OUTPUT_OFFSET = 0.0
PARSE_OK = True
__version__ = "10.0.0-standin"

float32, float16, bfloat16 = "float32", "float16", "bfloat16"


def _record(name: str, *args: Any, **kwargs: Any) -> None:
    CALLS.append((name, args, kwargs))


def _check(value: Any, kind: Any, what: str) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"{what}: expected {kind}, got {type(value).__name__} {value!r}")


class MemoryPoolType(enum.Enum):
    WORKSPACE = 0
    DLA_MANAGED_SRAM = 1
    DLA_LOCAL_DRAM = 2
    DLA_GLOBAL_DRAM = 3
    TACTIC_DRAM = 4


class BuilderFlag(enum.Enum):
    FP16 = 0
    INT8 = 1
    DEBUG = 2
    GPU_FALLBACK = 3
    REFIT = 4
    DISABLE_TIMING_CACHE = 5
    TF32 = 6
    SPARSE_WEIGHTS = 7
    OBEY_PRECISION_CONSTRAINTS = 8
    PREFER_PRECISION_CONSTRAINTS = 9
    BF16 = 10


class NetworkDefinitionCreationFlag(enum.Enum):
    EXPLICIT_BATCH = 0   # deprecated and ignored in TensorRT 10
    STRONGLY_TYPED = 1


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class ILogger:
    pass


class Logger(ILogger):
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    def __init__(self, min_severity: int = 2) -> None:
        _check(min_severity, int, "Logger(min_severity)")
        self.min_severity = min_severity


class IHostMemory:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def __buffer__(self, flags: int) -> memoryview:  # bytes(x) works as on the real IHostMemory
        return memoryview(self._data)

    def __bytes__(self) -> bytes:
        return self._data


class ITimingCache:
    def __init__(self, blob: bytes) -> None:
        self.entries = json.loads(blob) if blob else {}

    def serialize(self) -> IHostMemory:
        _record("ITimingCache.serialize")
        return IHostMemory(json.dumps(self.entries).encode())


class _Layer:
    def __init__(self, name: str) -> None:
        self.name, self.num_outputs, self.precision, self.outputs = name, 1, None, {}

    def set_output_type(self, index: int, dtype: str) -> None:
        _check(index, int, "ILayer.set_output_type(index)")
        self.outputs[index] = dtype


class INetworkDefinition:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.onnx: bytes | None = None
        self.layers = [_Layer("/model/feature/conv0/Conv"), _Layer("/model/classifier/Conv")]

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def get_layer(self, index: int) -> _Layer:
        _check(index, int, "INetworkDefinition.get_layer(index)")
        return self.layers[index]


class IOptimizationProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:  # noqa: A002 - TensorRT's names
        _record("IOptimizationProfile.set_shape", input, tuple(min), tuple(opt), tuple(max))
        _check(input, str, "set_shape(input)")
        dims = [tuple(int(d) for d in x) for x in (min, opt, max)]
        if len({len(d) for d in dims}) != 1:
            raise ValueError(f"set_shape({input}): min/opt/max ranks differ: {dims}")
        if not all(a <= b <= c for a, b, c in zip(*dims, strict=True)):
            raise ValueError(f"set_shape({input}): need min <= opt <= max, got {dims}")
        self.shapes[input] = tuple(dims)


class IBuilderConfig:
    def __init__(self) -> None:
        self.flags: set[BuilderFlag] = set()
        self.pools: dict[MemoryPoolType, int] = {}
        self.profiles: list[IOptimizationProfile] = []
        self.cache: ITimingCache | None = None

    def set_memory_pool_limit(self, pool: MemoryPoolType, pool_size: int) -> None:
        _record("IBuilderConfig.set_memory_pool_limit", pool, pool_size)
        _check(pool, MemoryPoolType, "set_memory_pool_limit(pool)")
        _check(pool_size, int, "set_memory_pool_limit(pool_size)")
        self.pools[pool] = pool_size

    def set_flag(self, flag: BuilderFlag) -> None:
        _record("IBuilderConfig.set_flag", flag)
        _check(flag, BuilderFlag, "set_flag(flag)")
        self.flags.add(flag)

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        _record("IBuilderConfig.add_optimization_profile", profile)
        _check(profile, IOptimizationProfile, "add_optimization_profile(profile)")
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache:
        _record("IBuilderConfig.create_timing_cache", serialized_timing_cache)
        _check(serialized_timing_cache, (bytes, bytearray, memoryview), "create_timing_cache(serialized_timing_cache)")
        return ITimingCache(bytes(serialized_timing_cache))

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        _record("IBuilderConfig.set_timing_cache", cache, ignore_mismatch)
        _check(cache, ITimingCache, "set_timing_cache(cache)")
        _check(ignore_mismatch, bool, "set_timing_cache(ignore_mismatch)")
        self.cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache:
        _record("IBuilderConfig.get_timing_cache")
        if self.cache is None:
            raise RuntimeError("no timing cache set")
        return self.cache


class IParserError:
    def __init__(self, desc: str) -> None:
        self._desc = desc

    def desc(self) -> str:
        return self._desc

    def __str__(self) -> str:
        return self._desc


class OnnxParser:
    def __init__(self, network: INetworkDefinition, logger: ILogger) -> None:
        _record("OnnxParser", network, logger)
        _check(network, INetworkDefinition, "OnnxParser(network)")
        _check(logger, ILogger, "OnnxParser(logger)")
        self.network = network
        self.errors: list[IParserError] = []

    def parse(self, model: bytes, path: str | None = None) -> bool:
        _record("OnnxParser.parse", len(model))
        _check(model, (bytes, bytearray), "parse(model)")
        if not PARSE_OK or not model.startswith(b"\x08"):   # an ONNX ModelProto starts with ir_version
            self.errors.append(IParserError("stand-in: not an ONNX model"))
            return False
        self.network.onnx = bytes(model)
        return True

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> IParserError:
        _check(index, int, "get_error(index)")
        return self.errors[index]


class Builder:
    def __init__(self, logger: ILogger) -> None:
        _record("Builder", logger)
        _check(logger, ILogger, "Builder(logger)")

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        _record("Builder.create_network", flags)
        _check(flags, int, "create_network(flags)")
        return INetworkDefinition(flags)

    def create_builder_config(self) -> IBuilderConfig:
        _record("Builder.create_builder_config")
        return IBuilderConfig()

    def create_optimization_profile(self) -> IOptimizationProfile:
        _record("Builder.create_optimization_profile")
        return IOptimizationProfile()

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> IHostMemory | None:
        _record("Builder.build_serialized_network", network, config)
        _check(network, INetworkDefinition, "build_serialized_network(network)")
        _check(config, IBuilderConfig, "build_serialized_network(config)")
        if network.onnx is None:
            return None
        if config.cache is not None:
            config.cache.entries["built"] = config.cache.entries.get("built", 0) + 1
        header = {"flags": sorted(f.name for f in config.flags),
                  "workspace": config.pools.get(MemoryPoolType.WORKSPACE),
                  "profiles": [{k: [list(d) for d in v] for k, v in p.shapes.items()} for p in config.profiles],
                  "layers": {layer.name: layer.precision for layer in network.layers if layer.precision}}
        blob = json.dumps(header).encode()
        return IHostMemory(len(blob).to_bytes(8, "little") + blob + network.onnx)


def read_header(engine_bytes: bytes) -> dict:
    """What the stand-in build recorded in an engine file."""
    n = int.from_bytes(engine_bytes[:8], "little")
    return json.loads(engine_bytes[8:8 + n])


class IExecutionContext:
    def __init__(self, engine: ICudaEngine) -> None:
        self.engine = engine
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}

    def set_input_shape(self, name: str, shape: Any) -> bool:
        _record("IExecutionContext.set_input_shape", name, tuple(shape))
        _check(name, str, "set_input_shape(name)")
        shape = tuple(int(d) for d in shape)
        lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
        if not all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
            raise RuntimeError(f"set_input_shape({name}): {shape} outside the profile [{lo}, {hi}]")
        self.shapes[name] = shape
        return True

    def set_tensor_address(self, name: str, memory: int) -> bool:
        _record("IExecutionContext.set_tensor_address", name)
        _check(name, str, "set_tensor_address(name)")
        _check(memory, int, "set_tensor_address(memory)")
        self.addresses[name] = memory
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        _check(name, str, "get_tensor_shape(name)")
        if name in self.engine.input_names:
            return self.shapes[name]
        b, _, h, w = self.shapes[self.engine.input_names[0]]
        return (b, 1, h, w)

    def execute_async_v3(self, stream_handle: int) -> bool:
        _record("IExecutionContext.execute_async_v3", stream_handle)
        _check(stream_handle, int, "execute_async_v3(stream_handle)")
        feeds = {}
        for name in self.engine.input_names:
            shape = self.shapes[name]
            n = int(np.prod(shape))
            feeds[name] = np.ctypeslib.as_array((ctypes.c_float * n).from_address(self.addresses[name])).reshape(shape)
        out = self.engine.session.run(None, {k: v.copy() for k, v in feeds.items()})[0].astype(np.float32)
        out = np.ascontiguousarray(out + np.float32(OUTPUT_OFFSET))
        ctypes.memmove(self.addresses[self.engine.output_name], out.ctypes.data, out.nbytes)
        return True


class ICudaEngine:
    def __init__(self, blob: bytes) -> None:
        import onnxruntime as ort

        self.header = read_header(blob)
        n = int.from_bytes(blob[:8], "little")
        self.session = ort.InferenceSession(blob[8 + n:], providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_name = self.session.get_outputs()[0].name
        self.onnx_shapes = {i.name: [d if isinstance(d, int) else -1 for d in i.shape]
                            for i in self.session.get_inputs()}

    @property
    def num_io_tensors(self) -> int:
        return len(self.input_names) + 1

    def get_tensor_name(self, index: int) -> str:
        _check(index, int, "get_tensor_name(index)")
        return [*self.input_names, self.output_name][index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        _check(name, str, "get_tensor_mode(name)")
        return TensorIOMode.INPUT if name in self.input_names else TensorIOMode.OUTPUT

    def get_tensor_shape(self, name: str) -> list[int]:
        _check(name, str, "get_tensor_shape(name)")
        return list(self.onnx_shapes.get(name, [-1, 1, -1, -1]))

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
        _check(name, str, "get_tensor_profile_shape(name)")
        _check(profile_index, int, "get_tensor_profile_shape(profile_index)")
        profiles = self.header["profiles"]
        if profiles and name in profiles[profile_index]:
            return [tuple(d) for d in profiles[profile_index][name]]
        static = tuple(self.onnx_shapes[name])
        return [static, static, static]

    def create_execution_context(self) -> IExecutionContext:
        _record("ICudaEngine.create_execution_context")
        return IExecutionContext(self)


class Runtime:
    def __init__(self, logger: ILogger) -> None:
        _record("Runtime", logger)
        _check(logger, ILogger, "Runtime(logger)")

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> ICudaEngine | None:
        _record("Runtime.deserialize_cuda_engine", len(serialized_engine))
        _check(serialized_engine, (bytes, bytearray, memoryview), "deserialize_cuda_engine(serialized_engine)")
        try:
            return ICudaEngine(bytes(serialized_engine))
        except Exception:
            return None   # TensorRT logs and returns None for a foreign or corrupt plan
