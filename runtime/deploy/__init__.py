"""Deploy side: ONNX export (checked with onnxruntime), TensorRT engine build, engine runners.

TensorRT cannot be installed in the workplace where this was written: :mod:`.trt_build` and
:class:`.engines.TensorRTEngine` are written against the real ``tensorrt`` API, gated on its
import, and not exercised here. :class:`.engines.OnnxRuntimeEngine` is the exercised path.
"""
