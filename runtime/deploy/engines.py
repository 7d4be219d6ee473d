"""Run an exported model: onnxruntime (exercised) or a TensorRT engine (written, not exercised here).

Both take and return numpy float32 arrays: stereo ``(left, right) -> disparity (B,1,H,W)``, mono
``(image,) -> depth``; inputs are ImageNet-normalised like the PyTorch path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class OnnxRuntimeEngine:
    """onnxruntime session over an exported .onnx file (CPU provider; CUDA when onnxruntime-gpu is there)."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(str(path), providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        #: first input's shape: ints for static axes, names for dynamic ones
        self.input_shape = list(self.session.get_inputs()[0].shape)

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        feeds = {n: np.ascontiguousarray(x, dtype=np.float32) for n, x in zip(self.input_names, inputs, strict=True)}
        return self.session.run(None, feeds)[0]


class TensorRTEngine:
    """A serialized TensorRT engine run with the TensorRT 10 tensor API on torch CUDA buffers.

    Not exercised where this was written (no tensorrt package): see :mod:`.trt_build`.
    """

    def __init__(self, path: Path) -> None:
        import torch

        from .trt_build import import_tensorrt

        trt = import_tensorrt()
        self.trt, self.torch = trt, torch
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise RuntimeError(f"{path}: not a TensorRT engine for this TensorRT version and GPU")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        torch = self.torch
        stream = torch.cuda.current_stream()
        feeds = [torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).cuda() for x in inputs]
        for name, tensor in zip(self.inputs, feeds, strict=True):
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        outs = []
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            out = torch.empty(shape, dtype=torch.float32, device="cuda")
            self.context.set_tensor_address(name, out.data_ptr())
            outs.append(out)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        stream.synchronize()
        return outs[0].cpu().numpy()


def open_engine(path: str | Path) -> Any:
    """The runner for ``path``: .onnx -> onnxruntime, anything else -> TensorRT."""
    p = Path(path)
    return OnnxRuntimeEngine(p) if p.suffix.lower() == ".onnx" else TensorRTEngine(p)


class EngineModule:
    """A deployed engine behind the network's call signature, so evaluate/inference run it unchanged.

    ``model(left, right, iters=..., test_mode=True)`` (stereo) or ``model(image)`` (mono): torch tensors
    in, a CPU float32 tensor out. The refinement iterations were baked into the graph at export, so
    ``iters`` is ignored. A static engine fed another size fails with one line naming the spec keys to
    set (TAO's deploy side fails silently there).
    """

    def __init__(self, path: str | Path, *, action: str) -> None:
        self.path = Path(path)
        self.action = action
        self.engine = open_engine(self.path)

    def __call__(self, *inputs: Any, iters: int | None = None, test_mode: bool = True) -> Any:
        import torch

        from ..errors import ConfigurationError

        arrays = [t.detach().float().cpu().numpy() for t in inputs]
        expected = getattr(self.engine, "input_shape", None)
        if expected is not None:
            got = arrays[0].shape
            if any(isinstance(e, int) and e > 0 and e != g for e, g in zip(expected, got, strict=True)):
                raise ConfigurationError(
                    f"{self.action}.input_height/{self.action}.input_width: engine {self.path.name} takes "
                    f"{list(expected)}, got {list(got)}; set them to the export size (and batch_size to its batch)"
                )
        return torch.from_numpy(self.engine(*arrays))
