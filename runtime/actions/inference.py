"""``depth_net inference``: a colourised PNG (and optionally a raw PFM) per sample of ``dataset.infer_dataset``.

* Any input size: the network pads internally. With ``inference.input_height`` x ``input_width`` the
  images are resized to that size for the network and the prediction is resized back to the file's
  size (disparity multiplied by the width ratio), so outputs always match the input images.
* Names: from the left image (mono: the image) path, with parent folders added only where two
  inputs would collide (``teddy_im0.png``, ``cones_im0.png``); see :func:`unique_output_names`.
* Colour: OpenCV TURBO, 0..the frame's 99th percentile (stereo disparity; mono depth/inverse depth).
  ``save_raw_pfm``: the float prediction as ``<name>.pfm`` beside it (disparity in pixels; metric
  mono: metres; relative mono: affine-invariant inverse depth).
* A tqdm progress bar; files are written atomically.
* Speed: on a GPU the fast path runs unless ``inference.optimize: false`` (:mod:`..prediction.fast_path`);
  the kpi ``ms_per_pair`` is the network's median steady latency per pair (first call per shape, which
  compiles and captures, excluded) and the categorical ``path`` says which path ran.
"""

from __future__ import annotations

import logging

from skillbank.runtime.context import ActionContext, ActionResult

log = logging.getLogger("depth_net")


def run(ctx: ActionContext) -> ActionResult:
    import torch.nn.functional as F
    from tqdm import tqdm

    from skillbank.runtime.data.io import write_disparity_png, write_pfm
    from skillbank.runtime.prediction.predict import predict_batch, prepare_run, unique_output_names

    spec = ctx.spec
    cfg = spec.inference
    stereo = spec.model.is_stereo
    dataset, loader, model, device = prepare_run(spec, "inference", "infer_dataset")

    key = "left_path" if stereo else "image_path"
    records = _input_paths(dataset, stereo)
    names = dict(zip(records, unique_output_names(records), strict=True))
    out_dir = ctx.results_dir
    written = 0
    for batch in tqdm(loader, desc="inference", unit="batch", dynamic_ncols=True, disable=None):
        pred = predict_batch(model, batch, spec, device)
        for i, (h, w) in enumerate(batch["size"]):
            p = pred[i : i + 1, :, :h, :w]
            oh, ow = batch["orig_size"][i]
            if (oh, ow) != (h, w):
                p = F.interpolate(p, size=(oh, ow), mode="bilinear", align_corners=False)
                if stereo:
                    p = p * (ow / w)
            array = p[0, 0].numpy()
            name = names[str(batch[key][i])]
            write_disparity_png(out_dir / f"{name}.png", array)
            if cfg.save_raw_pfm:
                write_pfm(out_dir / f"{name}.pfm", array)
            written += 1
    what = "disparity" if stereo else "depth"
    pfm = " + PFM" if cfg.save_raw_pfm else ""
    kpi: dict[str, float] = {"images": written}
    ms = model.ms_per_pair()
    if ms is not None:
        kpi["ms_per_pair"] = round(ms, 3)
    plan = getattr(model, "plan", None)
    categorical = {"path": plan.describe() if plan is not None else "engine"}
    speed = f" ({ms:.2f} ms per pair)" if ms is not None else ""
    return ActionResult(f"Wrote {written} colourised {what} PNG(s){pfm} to {out_dir}{speed}", kpi=kpi,
                        categorical=categorical, outputs={"folder": str(out_dir)})


def _input_paths(dataset, stereo: bool) -> list[str]:
    from torch.utils.data import ConcatDataset

    members = dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]
    paths: list[str] = []
    for member in members:
        for rec in member.records:
            paths.append(str(rec.left if stereo else rec.image))
    return paths
