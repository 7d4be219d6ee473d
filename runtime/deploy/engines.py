"""One engine interface for the deploy side: evaluate/inference with ``<action>.trt_engine``.

The file's suffix picks the runner (:data:`ENGINE_KINDS`):

* ``.pt2`` -> :class:`AOTIEngine`: an AOTInductor package (``depth_net export`` with ``format: aoti``),
  run with ``torch._inductor.aoti_load_package`` on the device it was compiled for;
* ``.onnx`` -> :class:`OnnxRuntimeEngine`: onnxruntime with every provider it has (CUDA, then CPU);
* ``.engine`` / ``.plan`` / ``.trt`` -> :class:`TensorRTEngine`: a serialized TensorRT 10 engine (needs
  the ``tensorrt`` package and a CUDA GPU).

Every runner takes ImageNet-normalised float32 (B,3,H,W) torch tensors (stereo: left, right) and returns
a float32 (B,1,H,W) torch tensor; :meth:`accepts` says whether an input shape fits (static axes equal,
dynamic axes inside the engine's range) so that :class:`EngineModule` fails with one line naming the spec
keys instead of running a wrong size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

ENGINE_KINDS = {".pt2": "AOTInductor", ".onnx": "onnxruntime", ".engine": "TensorRT", ".plan": "TensorRT",
                ".trt": "TensorRT"}


class UnknownEngineKind(ValueError):
    """The file's suffix names no engine kind."""


def _accepts(ranges: list[tuple[int, int]], shape: tuple[int, ...]) -> bool:
    return len(ranges) == len(shape) and all(lo <= s <= hi for (lo, hi), s in zip(ranges, shape, strict=True))


def _describe(ranges: list[tuple[int, int]]) -> str:
    return "[" + ", ".join(str(lo) if lo == hi else f"{lo}..{hi}" for lo, hi in ranges) + "]"


class AOTIEngine:
    """An AOTInductor package: its metadata gives the input shape (-1 = dynamic batch) and the device."""

    kind = "AOTInductor"

    def __init__(self, path: Path, device: torch.device | None = None) -> None:
        from skillbank.runtime.deploy.aoti_export import MAX_BATCH

        meta_device = self._peek_device(path)
        if meta_device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("the package was compiled for a CUDA GPU and none is available here")
        if device is None or device.type != meta_device:
            device = torch.device(meta_device)
        index = device.index if device.type == "cuda" and device.index is not None else -1
        if device.type == "cuda" and index >= 0:
            torch.cuda.set_device(index)
        self.runner = torch._inductor.aoti_load_package(str(path), device_index=index)
        self.metadata = dict(self.runner.get_metadata())
        self.device = device
        shape = [int(v) for v in self.metadata.get("depth_net.input_shape", "").split(",") if v]
        if len(shape) != 4:
            raise RuntimeError("not a depth_net package (no depth_net.input_shape in its metadata)")
        self.input_shape: list[int | str] = ["batch" if s == -1 else s for s in shape]
        self.ranges = [(1, MAX_BATCH) if s == -1 else (s, s) for s in shape]
        self.num_inputs = 2 if self.metadata.get("depth_net.stereo") == "1" else 1

    @staticmethod
    def _peek_device(path: Path) -> str:
        """The package's target device from its archive (``AOTI_DEVICE_KEY``), without loading kernels."""
        import json
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if name.endswith(".json") and "aotinductor" in name and "metadata" in Path(name).name:
                        meta = json.loads(archive.read(name))
                        if "AOTI_DEVICE_KEY" in meta:
                            return str(meta["AOTI_DEVICE_KEY"])
        except zipfile.BadZipFile as exc:
            raise RuntimeError(f"not an AOTInductor package ({exc})") from None
        return "cuda" if torch.cuda.is_available() else "cpu"

    def accepts(self, shape: tuple[int, ...]) -> bool:
        return _accepts(self.ranges, shape)

    def describe(self) -> str:
        return _describe(self.ranges)

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        feeds = [x.to(self.device, torch.float32, non_blocking=True).contiguous() for x in inputs]
        out = self.runner(*feeds)
        return out[0] if isinstance(out, (list, tuple)) else out


class OnnxRuntimeEngine:
    """onnxruntime session over an exported .onnx file (CUDA provider when onnxruntime-gpu has one, else CPU)."""

    kind = "onnxruntime"
    device = torch.device("cpu")

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available] or available
        self.session = ort.InferenceSession(str(path), providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        #: first input's shape: ints for static axes, names for dynamic ones
        self.input_shape = list(self.session.get_inputs()[0].shape)
        self.ranges = [(d, d) if isinstance(d, int) and d > 0 else (1, 1 << 30) for d in self.input_shape]
        self.num_inputs = len(self.input_names)

    def accepts(self, shape: tuple[int, ...]) -> bool:
        return _accepts(self.ranges, shape)

    def describe(self) -> str:
        return "[" + ", ".join(str(d) for d in self.input_shape) + "]"

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        feeds = {n: np.ascontiguousarray(x.detach().float().cpu().numpy())
                 for n, x in zip(self.input_names, inputs, strict=True)}
        return torch.from_numpy(self.session.run(None, feeds)[0])


class TensorRTEngine:
    """A serialized TensorRT engine run with the TensorRT 10 tensor API on torch buffers.

    ``get_tensor_profile_shape(name, 0)`` gives the (min, opt, max) of dynamic inputs. Written against the
    documented API and tested with a stand-in module (``tests/deploy/fake_tensorrt.py``); a real run
    needs the ``tensorrt`` package and a CUDA GPU.
    """

    kind = "TensorRT"

    def __init__(self, path: Path, device: torch.device | None = None) -> None:
        from skillbank.runtime.deploy.trt_build import import_tensorrt

        trt = import_tensorrt()
        self.trt = trt
        # TensorRT runs on a CUDA GPU; without one only a stand-in module (the tests') gets this far
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise RuntimeError("not a TensorRT engine for this TensorRT version and GPU")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.num_inputs = len(self.inputs)
        first = self.inputs[0]
        dims = list(self.engine.get_tensor_shape(first))
        self.input_shape = [d if d >= 0 else "dynamic" for d in dims]
        if any(d < 0 for d in dims):
            lo, _, hi = self.engine.get_tensor_profile_shape(first, 0)
            self.ranges = [(int(a), int(b)) for a, b in zip(lo, hi, strict=True)]
        else:
            self.ranges = [(d, d) for d in dims]

    def accepts(self, shape: tuple[int, ...]) -> bool:
        return _accepts(self.ranges, shape)

    def describe(self) -> str:
        return _describe(self.ranges)

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        feeds = [x.to(self.device, torch.float32).contiguous() for x in inputs]
        for name, tensor in zip(self.inputs, feeds, strict=True):
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        outs = []
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            out = torch.empty(shape, dtype=torch.float32, device=self.device)
            self.context.set_tensor_address(name, out.data_ptr())
            outs.append(out)
        stream = torch.cuda.current_stream(self.device).cuda_stream if self.device.type == "cuda" else 0
        if not self.context.execute_async_v3(stream):
            raise RuntimeError("TensorRT execution failed")
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()
        return outs[0]


def engine_kind(path: str | Path) -> str:
    """The engine kind of ``path`` from its suffix; :class:`UnknownEngineKind` otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in ENGINE_KINDS:
        raise UnknownEngineKind(f"{Path(path).name}: not an engine file (expected {', '.join(ENGINE_KINDS)})")
    return ENGINE_KINDS[suffix]


def open_engine(path: str | Path, device: torch.device | None = None) -> Any:
    """The runner for ``path`` (see the module doc)."""
    p = Path(path)
    kind = engine_kind(p)
    if kind == "AOTInductor":
        return AOTIEngine(p, device)
    if kind == "onnxruntime":
        return OnnxRuntimeEngine(p)
    return TensorRTEngine(p, device if device is not None and device.type == "cuda" else None)


class EngineModule:
    """A deployed engine behind the network's call signature, so evaluate/inference run it unchanged.

    ``model(left, right, iters=..., test_mode=True)`` (stereo) or ``model(image)`` (mono): torch tensors
    in, a float32 tensor out. The refinement iterations were baked in at export, so ``iters`` is ignored.
    An input the engine cannot take fails with one line naming the spec keys to set (TAO's deploy side
    fails silently there).
    """

    def __init__(self, path: str | Path, *, action: str, device: torch.device | None = None) -> None:
        self.path = Path(path)
        self.action = action
        self.engine = open_engine(self.path, device)
        self.device = getattr(self.engine, "device", torch.device("cpu"))

    def __call__(self, *inputs: Any, iters: int | None = None, test_mode: bool = True) -> Any:
        from skillbank.runtime.errors import ConfigurationError

        shape = tuple(inputs[0].shape)
        if len(inputs) != self.engine.num_inputs:
            raise ConfigurationError(
                f"{self.action}.trt_engine: {self.path.name} takes {self.engine.num_inputs} input(s), the model "
                f"section gives {len(inputs)}; export it from a {'stereo' if len(inputs) == 2 else 'mono'} model"
            )
        if not self.engine.accepts(shape):
            raise ConfigurationError(
                f"{self.action}.input_height/{self.action}.input_width: engine {self.path.name} takes "
                f"{self.engine.describe()}, got {list(shape)}; set them to the export size "
                "(and batch_size to its batch)"
            )
        return self.engine(*inputs)
