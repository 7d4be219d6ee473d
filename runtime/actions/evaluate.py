"""``depth_net evaluate``: score a checkpoint on ``dataset.test_dataset``.

Stereo: epe, bp1, bp2, bp3, d1, rmse (:mod:`..metrics`) over valid pixels and, where the annotation
has a non-occlusion mask (4th column), also over non-occluded pixels (``*_noc``); computed per image,
then averaged over images. Mono: abs_rel, rmse, d1/d2/d3 (relative models aligned by least-squares
scale and shift on inverse depth first).

Size: native resolution by default. With ``evaluate.input_height`` x ``input_width`` both images are
resized (bilinear) and the GT disparity is resized (nearest) and multiplied by the width ratio, so the
metrics are in pixels of the resized images (compare them only with runs at the same size, e.g. the
export size of an engine).

Outputs: ``<results_dir>/metrics_per_image.csv`` (one row per image) and the SUCCESS line's kpi
under ``val/`` (``val/epe``, ``val/bp2``, ``val/epe_noc``, ...), as TAO's PyTorch evaluate writes.
With ``evaluate.trt_engine`` (a ``.pt2`` AOTInductor package, an exported ``.onnx`` run by onnxruntime,
or a TensorRT engine) the deploy-side contract applies: plain kpi names (``epe``, ``bp2``, ...) and
``results.json``. Either way ``ms_per_pair`` is the network's (engine's) median steady latency per pair;
on a GPU the fast path runs unless ``evaluate.optimize: false`` (:mod:`..prediction.fast_path`).
"""

from __future__ import annotations

import csv
import io
import json
import logging

from skillbank.runtime.context import ActionContext, ActionResult

log = logging.getLogger("depth_net")


def run(ctx: ActionContext) -> ActionResult:
    from tqdm import tqdm

    from skillbank.atomic import atomic_write
    from skillbank.runtime.metrics import (
        MONO_METRICS,
        STEREO_METRICS,
        MetricAverager,
        mono_depth_metrics,
        stereo_image_metrics,
    )
    from skillbank.runtime.prediction.predict import is_engine, predict_batch, prepare_run

    spec = ctx.spec
    stereo = spec.model.is_stereo
    _, loader, model, device = prepare_run(spec, "evaluate", "test_dataset")
    names = list(STEREO_METRICS if stereo else MONO_METRICS)
    overall, noc = MetricAverager(names), MetricAverager(names)
    rows: list[dict[str, object]] = []
    skipped = 0
    for batch in tqdm(loader, desc="evaluate", unit="batch", dynamic_ncols=True, disable=None):
        pred = predict_batch(model, batch, spec, device)
        for i, (h, w) in enumerate(batch["size"]):
            p, valid = pred[i, :, :h, :w], batch["valid"][i, :, :h, :w]
            if stereo:
                gt = batch["disparity"][i, :, :h, :w]
                values = stereo_image_metrics(p, gt, valid)
                values_noc = stereo_image_metrics(p, gt, batch["nocc"][i, :, :h, :w]) if "nocc" in batch else None
                path = batch["left_path"][i]
            else:
                values = mono_depth_metrics(p, batch["target"][i, :, :h, :w], batch["depth"][i, :, :h, :w], valid,
                                            relative=spec.model.model_type == "RelativeDepthAnything")
                values_noc = None
                path = batch["image_path"][i]
            if values is None:
                skipped += 1
                continue
            overall.add(values)
            noc.add(values_noc)
            row: dict[str, object] = {"image": path, "height": h, "width": w}
            row.update({k: round(v, 6) for k, v in values.items()})
            if values_noc is not None:
                row.update({f"{k}_noc": round(v, 6) for k, v in values_noc.items()})
            rows.append(row)
    if not rows:
        from skillbank.runtime.errors import ConfigurationError

        raise ConfigurationError("dataset.test_dataset: no image has a valid ground-truth pixel; nothing to score")
    kpi = overall.result("val/")
    kpi.update({f"{k}_noc": v for k, v in noc.result("val/").items()})
    kpi["val/images"] = len(rows)
    ms = model.ms_per_pair()
    columns = ["image", "height", "width", *names]
    if noc.images:
        columns += [f"{n}_noc" for n in names]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(ctx.results_dir / "metrics_per_image.csv", buffer.getvalue())
    if is_engine(model):  # deploy-side contract: plain kpi names and results.json (readers accept both)
        kpi = {k.removeprefix("val/"): v for k, v in kpi.items()}
        atomic_write(ctx.results_dir / "results.json", json.dumps(kpi, indent=2) + "\n")
        kpi_prefix = ""
    else:
        kpi_prefix = "val/"
    if ms is not None:  # steady latency of the network (or engine) per pair, not a validation metric
        kpi["ms_per_pair"] = round(ms, 3)
    shown = (f"{kpi_prefix}{k}" for k in (("epe", "bp2") if stereo else ("abs_rel", "d1")))
    headline = ", ".join(f"{k.removeprefix('val/')} {kpi[k]:.4g}" for k in shown if k in kpi)
    extra = f"; {skipped} image(s) without valid GT skipped" if skipped else ""
    extra += f"; {ms:.2f} ms per pair" if ms is not None else ""
    return ActionResult(f"Evaluated {len(rows)} image(s): {headline}{extra}", kpi=kpi)
