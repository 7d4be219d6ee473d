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
