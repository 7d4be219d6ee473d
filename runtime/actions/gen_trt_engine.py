"""depth_net gen_trt_engine: a TensorRT engine from the exported ONNX graph.

Written against the TensorRT 10 Python API and gated on its import; NOT exercised where this was built
(TensorRT cannot be installed there). Without tensorrt the action fails with a Dependency error line.
"""

from __future__ import annotations

from pathlib import Path

from ..context import ActionContext, ActionResult
from ..errors import ConfigurationError, DependencyError, FileSystemError


def _profiles(cfg, onnx_file: Path):  # noqa: ANN001, ANN202
    """min/opt/max shapes from the spec for every dynamic axis of the graph's inputs."""
    import onnx

    from ..deploy.trt_build import ShapeProfile

    graph = onnx.load(str(onnx_file), load_external_data=False).graph
    trt_cfg = cfg.tensorrt
    profiles = []
    for inp in graph.input:
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in inp.type.tensor_type.shape.dim]
        if all(isinstance(d, int) and d > 0 for d in dims):
            continue
        shape = {"min": list(dims), "opt": list(dims), "max": list(dims)}
        for level in ("min", "opt", "max"):
            if isinstance(dims[0], str):
                shape[level][0] = getattr(trt_cfg, f"{level}_batch_size")
            for axis, key in ((2, "height"), (3, "width")):
                if isinstance(dims[axis], str):
                    value = getattr(cfg, f"{level}_{key}")
                    if value is None:
                        key_name = f"gen_trt_engine.{level}_{key}"
                        raise ConfigurationError(f"{key_name}: required for a dynamic-{key} ONNX graph")
                    if value % 32:
                        raise ConfigurationError(f"gen_trt_engine.{level}_{key}: {value} must be a multiple of 32")
                    shape[level][axis] = value
        profiles.append(ShapeProfile(inp.name, tuple(shape["min"]), tuple(shape["opt"]), tuple(shape["max"])))
    return profiles


def run(ctx: ActionContext) -> ActionResult:
    from ..deploy.trt_build import BuildSettings, TensorRTMissing, build_engine, import_tensorrt

    cfg = ctx.spec.gen_trt_engine
    onnx_file = Path(cfg.onnx_file)
    if not onnx_file.is_file():
        raise FileSystemError(f"gen_trt_engine.onnx_file: file not found: {onnx_file}")
    profiles = _profiles(cfg, onnx_file)
    try:
        import_tensorrt()
    except TensorRTMissing as exc:
        raise DependencyError(str(exc)) from None
    engine = Path(cfg.trt_engine) if cfg.trt_engine else ctx.results_dir / "model.engine"
    settings = BuildSettings(
        fp16=cfg.tensorrt.data_type == "FP16",
        workspace_gib=cfg.tensorrt.workspace_size,
        profiles=profiles,
        layers_precision=list(cfg.tensorrt.layers_precision),
        timing_cache=Path(cfg.timing_cache) if cfg.timing_cache else None,
    )
    ctx.report.running(f"Building a {cfg.tensorrt.data_type} TensorRT engine from {onnx_file}")
    build_engine(onnx_file, engine, settings)
    return ActionResult(
        message=f"Built {engine} ({cfg.tensorrt.data_type})",
        categorical={"trt_engine": str(engine), "data_type": cfg.tensorrt.data_type},
        outputs={"trt_engine": str(engine)},
    )
