"""depth_net gen_trt_engine: a TensorRT engine from the exported ONNX graph, checked for drift.

Written against the TensorRT 10 Python API (:mod:`..deploy.trt_build`) and tested with a stand-in module
that checks those calls; gated on ``import tensorrt`` (without it the action fails with a Dependency
error line). The engine is built under a temporary name, run on the drift pair (``drift_left`` /
``drift_right`` or a synthetic pair, at the graph's static size or the profile's opt size) next to the
ONNX graph under onnxruntime (fp32 CPU; export checked that graph against PyTorch), and kept only
within ``gen_trt_engine.max_drift_px`` (:mod:`..deploy.drift`).
"""

from __future__ import annotations

from pathlib import Path

from skillbank.runtime.context import ActionContext, ActionResult
from skillbank.runtime.errors import ActionError, ConfigurationError, DependencyError, FileSystemError


def _profiles(cfg, onnx_file: Path):  # noqa: ANN001, ANN202
    """min/opt/max shapes from the spec for every dynamic axis of the graph's inputs."""
    import onnx

    from skillbank.runtime.deploy.trt_build import ShapeProfile

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


def _drift_size(cfg, onnx_file: Path) -> tuple[int, int, int]:  # noqa: ANN001
    """(batch, height, width) the drift pair runs at: the graph's static axes, else the profile's opt."""
    import onnx

    dims = onnx.load(str(onnx_file), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    fixed = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    batch = fixed[0] or cfg.tensorrt.opt_batch_size
    return batch, fixed[2] or cfg.opt_height, fixed[3] or cfg.opt_width


def run(ctx: ActionContext) -> ActionResult:
    import torch

    from skillbank.atomic import temp_beside
    from skillbank.runtime.deploy.drift import drift_inputs, finalize, measure
    from skillbank.runtime.deploy.engines import OnnxRuntimeEngine, TensorRTEngine
    from skillbank.runtime.deploy.trt_build import BuildSettings, TensorRTMissing, build_engine, import_tensorrt

    cfg = ctx.spec.gen_trt_engine
    if not cfg.onnx_file:
        raise ConfigurationError("gen_trt_engine.onnx_file: required (the graph depth_net export wrote)")
    onnx_file = Path(cfg.onnx_file)
    if not onnx_file.is_file():
        raise FileSystemError(f"gen_trt_engine.onnx_file: file not found: {onnx_file}")
    profiles = _profiles(cfg, onnx_file)
    try:
        import_tensorrt()
    except TensorRTMissing as exc:
        raise DependencyError(str(exc)) from None
    engine = Path(cfg.trt_engine) if cfg.trt_engine else ctx.results_dir / "model.engine"
    if engine.suffix.lower() not in (".engine", ".plan", ".trt"):
        raise ConfigurationError(f"gen_trt_engine.trt_engine: {engine} must end in .engine, .plan or .trt")
    settings = BuildSettings(
        precision=cfg.tensorrt.data_type,
        workspace_gib=cfg.tensorrt.workspace_size,
        profiles=profiles,
        layers_precision=list(cfg.tensorrt.layers_precision),
        timing_cache=Path(cfg.timing_cache) if cfg.timing_cache else None,
    )
    ctx.report.running(f"Building a {cfg.tensorrt.data_type} TensorRT engine from {onnx_file}")
    tmp = temp_beside(engine)
    try:
        build_engine(onnx_file, tmp, settings)
    except ValueError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigurationError(f"gen_trt_engine.tensorrt.layers_precision: {exc}") from None
    except RuntimeError as exc:
        tmp.unlink(missing_ok=True)
        raise ActionError(str(exc)) from None
    try:
        batch, height, width = _drift_size(cfg, onnx_file)
        reference_engine = OnnxRuntimeEngine(onnx_file)
        arrays, input_name = drift_inputs(stereo=reference_engine.num_inputs == 2, height=height, width=width,
                                          left=cfg.drift_left, right=cfg.drift_right, key="gen_trt_engine")
        inputs = [torch.from_numpy(a).repeat(batch, 1, 1, 1) for a in arrays]
        reference = reference_engine(*inputs).numpy()
        out = TensorRTEngine(tmp)(*inputs).float().cpu().numpy()
        drift = measure(reference, out, stereo=len(inputs) == 2, max_drift_px=cfg.max_drift_px,
                        reference_name="the ONNX graph under onnxruntime (fp32)", input_name=input_name)
        final = finalize(tmp, engine, drift, ctx.results_dir, key="gen_trt_engine")
    finally:
        tmp.unlink(missing_ok=True)
    return ActionResult(
        message=f"Built {final} ({cfg.tensorrt.data_type}; drift {drift.max_abs_px:.2g} px)",
        kpi=drift.kpi(),
        categorical={"trt_engine": str(final), "data_type": cfg.tensorrt.data_type},
        outputs={"trt_engine": str(final), "drift": str(ctx.results_dir / "drift.json")},
    )
