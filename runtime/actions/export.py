"""depth_net export: a checkpoint to an fp32 ONNX graph (``format: onnx``, opset 17) or an AOTInductor
package (``format: aoti``, ``.pt2``), each checked against PyTorch on a real pair before it is kept.

* onnx: traced on the CPU in fp32; static or dynamic batch / H/W (:mod:`..deploy.onnx_export`); checked
  with onnxruntime (CPU) against the checkpoint's fp32 PyTorch output.
* aoti: ``torch.export`` + AOTInductor for this machine's GPU (the CPU with ``on_cpu`` or without a GPU),
  after the inference-only rewrites (FastFoundationStereo: folded BatchNorm, padded widths; ``optimize``)
  in ``precision`` (fp16/bf16 need a GPU); static H/W, dynamic batch with ``batch_size: -1``
  (:mod:`..deploy.aoti_export`); checked against the checkpoint's fp32 PyTorch output on the same device.

Drift (:mod:`..deploy.drift`): ``drift.json`` beside status.json; above ``export.max_drift_px`` the file is
kept as ``<stem>.rejected<suffix>`` and the action fails with one line.
"""

from __future__ import annotations

from pathlib import Path

from skillbank.atomic import temp_beside
from skillbank.runtime.context import ActionContext, ActionResult
from skillbank.runtime.deploy.drift import DriftError
from skillbank.runtime.errors import ConfigurationError

#: kept for callers that catch the export failure by this name
ExportMismatchError = DriftError


def run(ctx: ActionContext) -> ActionResult:
    import torch

    from skillbank.runtime.deploy.drift import drift_inputs
    from skillbank.runtime.training.weights import build_model, load_weights, resolve_weights

    spec, cfg = ctx.spec, ctx.spec.export
    stereo = spec.model.is_stereo
    model_type = spec.model.model_type
    if cfg.format == "aoti":
        target = Path(cfg.aoti_file) if cfg.aoti_file else ctx.results_dir / f"{model_type}.pt2"
        if target.suffix.lower() != ".pt2":
            raise ConfigurationError(f"export.aoti_file: {target} must end in .pt2")
    else:
        target = Path(cfg.onnx_file) if cfg.onnx_file else ctx.results_dir / f"{model_type}.onnx"
        if target.suffix.lower() != ".onnx":
            raise ConfigurationError(f"export.onnx_file: {target} must end in .onnx")
    iters = (cfg.valid_iters or spec.model.valid_iters) if stereo else None
    model = build_model(spec)
    load_weights(model, resolve_weights(cfg.checkpoint, "export.checkpoint"), "export.checkpoint")
    model.eval()
    batch = max(cfg.batch_size, 1)
    arrays, input_name = drift_inputs(stereo=stereo, height=cfg.input_height, width=cfg.input_width,
                                      left=cfg.drift_left, right=cfg.drift_right, key="export")
    inputs = [torch.from_numpy(a).repeat(batch, 1, 1, 1) for a in arrays]
    if cfg.format == "aoti":
        return _export_aoti(ctx, model, target, inputs, input_name, iters)
    return _export_onnx(ctx, model, target, inputs, input_name, iters)


def _reference(model, inputs, iters):  # noqa: ANN001, ANN202
    """The checkpoint's fp32 eager output (TF32 off on a GPU)."""
    import torch

    from skillbank.runtime.deploy.aoti_export import DeployWrapper

    stereo = len(inputs) == 2
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            return DeployWrapper(model, stereo=stereo, iters=iters).eval()(*inputs).float().cpu().numpy()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


def _export_onnx(ctx: ActionContext, model, target: Path, inputs, input_name: str, iters) -> ActionResult:  # noqa: ANN001
    from skillbank.runtime.deploy.drift import finalize, measure
    from skillbank.runtime.deploy.engines import OnnxRuntimeEngine
    from skillbank.runtime.deploy.onnx_export import export_onnx

    spec, cfg = ctx.spec, ctx.spec.export
    dynamic_hw = cfg.dynamic_hw
    if dynamic_hw and spec.model.model_type != "FastFoundationStereo":
        ctx.log.warning(
            "export.dynamic_hw: %s bakes the ViT positional embedding into the graph; exporting static %dx%d",
            spec.model.model_type, cfg.input_height, cfg.input_width,
        )
        ctx.report.running("dynamic_hw is FastFoundationStereo only: fell back to a static H/W graph")
        dynamic_hw = False
    if not cfg.on_cpu:
        ctx.log.info("export traces on the CPU in fp32 whatever export.on_cpu says (the graph is device-free)")
    model = model.float().cpu()
    reference = _reference(model, inputs, iters)
    tmp = temp_beside(target)
    try:
        report = export_onnx(model, tmp, stereo=len(inputs) == 2, height=cfg.input_height, width=cfg.input_width,
                             batch_size=cfg.batch_size, dynamic_hw=dynamic_hw, opset=cfg.opset_version, iters=iters,
                             verify=False)
        out = OnnxRuntimeEngine(tmp)(*inputs).numpy()
        drift = measure(reference, out, stereo=len(inputs) == 2, max_drift_px=cfg.max_drift_px,
                        reference_name="PyTorch fp32 (CPU)", input_name=input_name)
        ctx.report.running(f"onnxruntime vs PyTorch on {input_name}: max |d| {drift.max_abs_px:.2e} px, "
                           f"mean {drift.mean_abs_px:.2e} px")
        final = finalize(tmp, target, drift, ctx.results_dir, key="export")
    finally:
        tmp.unlink(missing_ok=True)
    return ActionResult(
        message=f"Exported {final} (input {report.input_shape}, opset {report.opset}"
        + (f", {iters} iterations" if iters else "") + f"; drift {drift.max_abs_px:.2g} px)",
        kpi=drift.kpi(),
        categorical={"onnx_file": str(final), "format": "onnx", "dynamic_batch": report.dynamic_batch,
                     "dynamic_hw": dynamic_hw},
        outputs={"onnx_file": str(final), "drift": str(ctx.results_dir / "drift.json")},
    )


def _export_aoti(ctx: ActionContext, model, target: Path, inputs, input_name: str, iters) -> ActionResult:  # noqa: ANN001
    import torch

    from skillbank.runtime.deploy.aoti_export import export_aoti
    from skillbank.runtime.deploy.drift import finalize, measure
    from skillbank.runtime.deploy.engines import AOTIEngine
    from skillbank.runtime.networks.speed.fast_inference import PRECISIONS

    spec, cfg = ctx.spec, ctx.spec.export
    model_type = spec.model.model_type
    device = torch.device("cuda" if torch.cuda.is_available() and not cfg.on_cpu else "cpu")
    if cfg.precision != "fp32" and device.type != "cuda":
        raise ConfigurationError(f"export.precision: {cfg.precision} needs a GPU (AOTInductor compiles for the "
                                 f"device it exports on; this run is on the CPU); use fp32")
    if cfg.dynamic_hw:
        ctx.report.running("export.dynamic_hw: AOTInductor packages have a static H/W here; exporting "
                           f"{cfg.input_height}x{cfg.input_width}")
    model = model.float().to(device)
    inputs = [x.to(device) for x in inputs]
    reference = _reference(model, inputs, iters)
    optimized = cfg.optimize and model_type == "FastFoundationStereo"
    if model_type == "FastFoundationStereo":
        from skillbank.runtime.networks.speed.fast_inference import optimize_for_inference

        optimize_for_inference(model, optimize=cfg.optimize, precision=cfg.precision)
    else:
        if cfg.optimize:
            ctx.log.info("export.optimize: the inference rewrites are FastFoundationStereo's; %s exports as is",
                         model_type)
        model.to(PRECISIONS[cfg.precision])
    ctx.report.running(f"Compiling an AOTInductor package for {device.type} ({cfg.precision}"
                       + (", folded BN + padded widths" if optimized else "") + ")")
    build = export_aoti(model, target, stereo=len(inputs) == 2, height=cfg.input_height, width=cfg.input_width,
                        batch_size=cfg.batch_size, iters=iters, device=device, autotune=cfg.autotune,
                        metadata={"depth_net.model_type": model_type, "depth_net.precision": cfg.precision,
                                  "depth_net.optimized": str(int(optimized))})
    ctx.log.info("torch.export %.1f s, AOTInductor compile %.1f s", build.export_s, build.compile_s)
    try:
        del model
        out = AOTIEngine(build.tmp_file, device)(*inputs).float().cpu().numpy()
        drift = measure(reference, out, stereo=len(inputs) == 2, max_drift_px=cfg.max_drift_px,
                        reference_name=f"PyTorch fp32 ({device.type})", input_name=input_name)
        ctx.report.running(f"package vs PyTorch on {input_name}: max |d| {drift.max_abs_px:.2e} px, "
                           f"mean {drift.mean_abs_px:.2e} px")
        final = finalize(build.tmp_file, target, drift, ctx.results_dir, key="export")
    finally:
        build.tmp_file.unlink(missing_ok=True)
    dynamic_batch = cfg.batch_size == -1
    return ActionResult(
        message=f"Exported {final} (AOTInductor, {device.type}, {cfg.precision}, input {build.input_shape}"
        + (f", {iters} iterations" if iters else "") + f"; drift {drift.max_abs_px:.2g} px)",
        kpi={**drift.kpi(), "export_s": round(build.export_s, 1), "compile_s": round(build.compile_s, 1)},
        categorical={"aoti_file": str(final), "format": "aoti", "device": device.type, "precision": cfg.precision,
                     "dynamic_batch": dynamic_batch, "optimized": optimized},
        outputs={"aoti_file": str(final), "drift": str(ctx.results_dir / "drift.json")},
    )
