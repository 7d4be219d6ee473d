"""depth_net export: a checkpoint to an fp32 ONNX graph (opset 17), checked with onnxruntime."""

from __future__ import annotations

from pathlib import Path

from ..context import ActionContext, ActionResult
from ..errors import ActionError, ConfigurationError

#: Largest |onnxruntime - PyTorch| accepted on the fp32 check input (pixels of disparity, or depth units).
ORT_TOLERANCE = 0.05


class ExportMismatchError(ActionError):
    """The exported graph does not reproduce the PyTorch output."""

    prefix = "Export error"


def run(ctx: ActionContext) -> ActionResult:
    from ..deploy.onnx_export import export_onnx
    from ..training.weights import build_model, load_weights, resolve_weights

    spec, cfg = ctx.spec, ctx.spec.export
    stereo = spec.model.is_stereo
    dynamic_hw = cfg.dynamic_hw
    if dynamic_hw and spec.model.model_type != "FastFoundationStereo":
        ctx.log.warning(
            "export.dynamic_hw: %s bakes the ViT positional embedding into the graph; exporting static %dx%d",
            spec.model.model_type,
            cfg.input_height,
            cfg.input_width,
        )
        ctx.report.running("dynamic_hw is FastFoundationStereo only: fell back to a static H/W graph")
        dynamic_hw = False
    if not cfg.on_cpu:
        ctx.log.info("export traces on the CPU in fp32 whatever export.on_cpu says (the graph is device-free)")
    model = build_model(spec)
    load_weights(model, resolve_weights(cfg.checkpoint, "export.checkpoint"), "export.checkpoint")
    model.eval()
    onnx_file = Path(cfg.onnx_file) if cfg.onnx_file else ctx.results_dir / f"{spec.model.model_type}.onnx"
    if onnx_file.suffix.lower() != ".onnx":
        raise ConfigurationError(f"export.onnx_file: {onnx_file} must end in .onnx")
    iters = cfg.valid_iters or spec.model.valid_iters
    report = export_onnx(
        model,
        onnx_file,
        stereo=stereo,
        height=cfg.input_height,
        width=cfg.input_width,
        batch_size=cfg.batch_size,
        dynamic_hw=dynamic_hw,
        opset=cfg.opset_version,
        iters=iters if stereo else None,
    )
    for note in report.notes:
        ctx.report.running(note)
    if report.ort_max_abs_diff is not None and report.ort_max_abs_diff > ORT_TOLERANCE:
        raise ExportMismatchError(
            f"{onnx_file}: onnxruntime differs from PyTorch by up to {report.ort_max_abs_diff:.3g} "
            f"(tolerance {ORT_TOLERANCE}); the graph is not faithful, do not deploy it"
        )
    kpi = {"ort_max_abs_diff": report.ort_max_abs_diff, "ort_mean_abs_diff": report.ort_mean_abs_diff}
    return ActionResult(
        message=f"Exported {onnx_file} (input {report.input_shape}, opset {report.opset}"
        + (f", {iters} iterations" if stereo else "")
        + ")",
        kpi={k: v for k, v in kpi.items() if v is not None},
        categorical={"onnx_file": str(onnx_file), "dynamic_batch": report.dynamic_batch, "dynamic_hw": dynamic_hw},
        outputs={"onnx_file": str(onnx_file)},
    )
