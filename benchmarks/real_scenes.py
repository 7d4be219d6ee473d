"""Train FFS bp2 from random initialisation with a recipe, then score it on real scenes beside SGBM.

1. ``depth_net convert``: render the recipe's synthetic set (every core).
2. ``depth_net train`` with the recipe (``--epochs`` / overrides adjust it); its first epoch's
   ``startup_s`` is the time to the first step at steady speed (cold: a fresh compile cache). With
   ``--warm-check`` a second, short run on the same shapes measures it again with the cache warm.
3. For every real group under ``--data`` (Middlebury 4 scenes, KITTI 2015, SceneFlow TEST) and the
   motorcycle pair of scikit-image: ``depth_net evaluate`` of the trained network at native size
   (per-image metrics averaged over images), and OpenCV SGBM with the classical baseline's settings
   scored by the same metric code on the same pixels (finite GT in (0, max_disparity)).
4. ``depth_net inference`` and one picture per group: left | prediction | GT, a row per scene.

    python benchmarks/real_scenes.py --data ../shared/data/stereo --work /tmp/rs \
        --out benchmarks/results/real_scenes_h200.json --pictures docs/images --warm-check
    python benchmarks/real_scenes.py --data ../shared/data/stereo --work /tmp/rs --out /tmp/rs.json --tiny
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
RECIPE = HERE.parent / "examples" / "recipes" / "ffs_synthetic_from_scratch.yaml"
TINY = {  # CPU smoke test: a tiny network, a handful of pairs
    "model.volume_dim=8",
    "model.train_iters=2",
    "model.valid_iters=2",
    "model.max_disparity=64",
}


def depth_net(action: str, spec: Path, *overrides: str) -> tuple[int, float, list[dict[str, Any]], Path]:
    """Run an action; return (exit code, wall seconds, status.json lines, results folder)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "skillbank.runtime.cli", action, "-e", str(spec), *overrides],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    print(f"$ depth_net {action} {' '.join(overrides)} -> exit {proc.returncode} in {wall:.0f} s", flush=True)
    if proc.returncode:
        print(proc.stdout[-2000:], proc.stderr[-3000:], sep="\n", flush=True)
    spec_data = yaml.safe_load(spec.read_text())
    folder = Path(
        next(
            (o.split("=", 1)[1] for o in overrides if o.startswith(f"{action}.results_dir=")),
            Path(spec_data["results_dir"]) / action,
        )
    )
    status_file = folder / "status.json"
    lines = [json.loads(x) for x in status_file.read_text().splitlines() if x.strip()] if status_file.exists() else []
    return proc.returncode, wall, lines, folder


def _write_motorcycle(work: Path) -> Path:
    from skimage import data

    from skillbank.runtime.data.io import write_pfm, write_png

    left, right, disp = data.stereo_motorcycle()
    folder = work / "motorcycle"
    write_png(folder / "im0.png", left)
    write_png(folder / "im1.png", right)
    write_pfm(folder / "disp0GT.pfm", np.where(np.isfinite(disp), disp, np.inf).astype(np.float32))
    return _annotation(work / "motorcycle.txt", [[folder / "im0.png", folder / "im1.png", folder / "disp0GT.pfm"]])


def _annotation(path: Path, rows: list[list[Path]]) -> Path:
    path.write_text("".join(" ".join(str(p) for p in row) + "\n" for row in rows))
    return path


def real_groups(data: Path, work: Path) -> dict[str, tuple[str, Path]]:
    """group -> (dataset class, annotation file) for every group found."""
    groups: dict[str, tuple[str, Path]] = {}
    mb = sorted(p for p in (data / "middlebury").glob("*") if (p / "disp0GT.pfm").is_file())
    if mb:
        rows = [[s / "im0.png", s / "im1.png", s / "disp0GT.pfm", s / "mask0nocc.png"] for s in mb]
        groups["middlebury"] = ("Middlebury", _annotation(work / "middlebury.txt", rows))
    kitti = sorted((data / "kitti2015" / "training" / "image_2").glob("*_10.png"))
    if kitti:
        root = data / "kitti2015" / "training"
        rows = [[root / "image_2" / f.name, root / "image_3" / f.name, root / "disp_occ_0" / f.name] for f in kitti]
        groups["kitti2015"] = ("Kitti", _annotation(work / "kitti2015.txt", rows))
    sf = sorted((data / "sceneflow" / "frames_cleanpass" / "TEST").glob("*/*/left/*.png"))
    if sf:
        root = data / "sceneflow"
        rows = []
        for f in sf:
            rel = f.relative_to(root / "frames_cleanpass")
            rows.append([f, f.parent.parent / "right" / f.name, (root / "disparity" / rel).with_suffix(".pfm")])
        groups["sceneflow_test"] = ("GenericDataset", _annotation(work / "sceneflow_test.txt", rows))
    with contextlib.suppress(ImportError):
        groups["motorcycle"] = ("GenericDataset", _write_motorcycle(work))
    return groups


def sgbm_scores(dataset_class: str, annotation: Path, max_disparity: float) -> dict[str, float]:
    """The classical baseline on a group: StereoSGBM (3-way, block 5, P1 8*3*25, P2 32*3*25, prefilter 15,
    uniqueness 10, speckle 100/2, disp12MaxDiff 1, numDisparities = GT max rounded up to 16), invalid
    pixels filled from the nearest valid one on their left; per-image metrics averaged over images."""
    import torch

    from skillbank.runtime.data.io import decode_disparity, read_image_rgb
    from skillbank.runtime.data.stereo_datasets import get_stereo_dataset_class, valid_disparity_mask
    from skillbank.runtime.metrics import stereo_image_metrics

    encoding = get_stereo_dataset_class(dataset_class).encoding
    per_image = []
    for line in annotation.read_text().splitlines():
        left_p, right_p, disp_p = line.split()[:3]
        gt = decode_disparity(disp_p, encoding)
        valid = valid_disparity_mask(gt, max_disparity)
        num = int(np.ceil(np.nanmax(np.where(np.isfinite(gt), gt, 0)) / 16) * 16)
        sgbm = cv2.StereoSGBM_create(
            0,
            max(num, 16),
            5,
            P1=8 * 3 * 25,
            P2=32 * 3 * 25,
            disp12MaxDiff=1,
            preFilterCap=15,
            uniquenessRatio=10,
            speckleWindowSize=100,
            speckleRange=2,
            mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY,
        )
        gray = [cv2.cvtColor(read_image_rgb(p), cv2.COLOR_RGB2GRAY) for p in (left_p, right_p)]
        pred = sgbm.compute(*gray).astype(np.float32) / 16
        for row in pred:  # fill invalid (negative) pixels from the nearest valid pixel on their left
            last = 0.0
            for x in range(row.shape[0]):
                if row[x] < 0:
                    row[x] = last
                else:
                    last = row[x]
        values = stereo_image_metrics(
            torch.from_numpy(pred)[None], torch.from_numpy(np.where(valid, gt, 0))[None], torch.from_numpy(valid)[None]
        )
        per_image.append(values)
    return {k: float(np.mean([v[k] for v in per_image])) for k in ("epe", "bp2", "d1")}


def picture(group: str, annotation: Path, inference_dir: Path, dataset_class: str, out: Path) -> None:
    from skillbank.runtime.data.io import colorize_disparity, decode_disparity, read_image_rgb, read_pfm
    from skillbank.runtime.data.stereo_datasets import get_stereo_dataset_class

    encoding = get_stereo_dataset_class(dataset_class).encoding
    rows = []
    for line, pfm in zip(annotation.read_text().splitlines(), sorted(inference_dir.glob("*.pfm")), strict=False):
        left_p, _, disp_p = line.split()[:3]
        left, gt, pred = read_image_rgb(left_p), decode_disparity(disp_p, encoding), read_pfm(pfm)
        top = float(np.nanmax(np.where(np.isfinite(gt), gt, 0)))
        tiles = [
            left,
            colorize_disparity(pred, max_value=top),
            colorize_disparity(np.nan_to_num(gt, posinf=0), max_value=top),
        ]
        row = np.concatenate(tiles, axis=1)
        rows.append(cv2.resize(row, (1200, int(row.shape[0] * 1200 / row.shape[1])), interpolation=cv2.INTER_AREA))
    if rows:
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="folder with middlebury/, kitti2015/, sceneflow/")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--recipe", type=Path, default=RECIPE)
    ap.add_argument("--pictures", type=Path, help="write real_scenes_<group>.png here")
    ap.add_argument("--warm-check", action="store_true", help="a second short train run with the cache warm")
    ap.add_argument("--tiny", action="store_true", help="CPU smoke test: tiny network, 8 pairs, 1 epoch")
    ap.add_argument("overrides", nargs="*", help="depth_net overrides for convert and train, e.g. train.num_epochs=3")
    args = ap.parse_args()

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    spec = yaml.safe_load(args.recipe.read_text())
    spec["results_dir"] = str(work / "run")
    for split in ("train_dataset", "val_dataset"):
        name = "train.txt" if split == "train_dataset" else "val.txt"
        spec["dataset"][split]["data_sources"][0]["data_file"] = str(work / "run" / "convert" / name)
    overrides = list(args.overrides)
    if args.tiny:
        overrides += [
            *sorted(TINY),
            "convert.num_pairs=8",
            "convert.height=96",
            "convert.width=192",
            "convert.max_disparity=64",
            "dataset.max_disparity=64",
            "train.num_epochs=1",
            "train.num_gpus=0",
            "train.compile=false",
            "train.cuda_graph=false",
            "train.precision=fp32",
            "dataset.train_dataset.augmentation.crop_size=[64,128]",
            "evaluate.num_gpus=0",
            "inference.num_gpus=0",
            "dataset.train_dataset.workers=0",
            "train.validation_interval=1",
            "train.checkpoint_interval=1",
        ]
    spec_path = work / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    convert_over = [o for o in overrides if o.startswith("convert.")]
    model_over = [o for o in overrides if o.startswith(("model.", "dataset.max_disparity"))]
    rc_c, convert_s, _, _ = depth_net("convert", spec_path, *convert_over)
    rc_t, train_s, train_lines, train_dir = depth_net(
        "train", spec_path, *[o for o in overrides if not o.startswith("convert.")]
    )
    running = [e for e in train_lines if e["status"] == "RUNNING"]
    report: dict[str, Any] = {
        "what": "FFS bp2 from random init on the synthetic generator with the recipe, scored at native size on real "
        "scenes beside OpenCV SGBM (same metric code, same pixels: finite GT in (0, max_disparity))",
        "recipe": yaml.safe_load(args.recipe.read_text()),
        "overrides": overrides,
        "exit_codes": {"convert": rc_c, "train": rc_t},
        "wall_s": {"convert": round(convert_s, 1), "train": round(train_s, 1)},
        "startup_s_cold": running[0]["kpi"].get("startup_s") if running else None,
        "epochs": [
            {
                "epoch": e["categorical"]["epoch"],
                "time": e["categorical"]["time_per_epoch"],
                **{k: v for k, v in e.get("kpi", {}).items()},
            }
            for e in running
        ],
    }
    try:
        import torch

        report["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    except Exception:  # report without a device name rather than fail after training
        report["device"] = "unknown"
    if args.warm_check and rc_t == 0:
        rc_w, warm_s, warm_lines, _ = depth_net(
            "train",
            spec_path,
            *overrides,
            "train.num_epochs=1",
            f"train.results_dir={work / 'warm'}",
            f"dataset.train_dataset.data_sources.0.data_file={work / 'run' / 'convert' / 'val.txt'}",
        )
        warm = [e for e in warm_lines if e["status"] == "RUNNING"]
        report["startup_s_warm"] = warm[0]["kpi"].get("startup_s") if warm else None
        report["wall_s"]["warm_check"] = round(warm_s, 1)
    max_disp = (
        float(yaml.safe_load((train_dir / "experiment.yaml").read_text())["dataset"]["max_disparity"])
        if (train_dir / "experiment.yaml").exists()
        else 192.0
    )
    groups = real_groups(args.data.resolve(), work)
    report["groups"] = {}
    for group, (cls, ann) in groups.items():
        test = [
            f"dataset.test_dataset.data_sources=[{{dataset_name: {cls}, data_file: {ann}}}]",
            "dataset.test_dataset.batch_size=1",
            "dataset.test_dataset.workers=2",
        ]
        infer = [
            f"dataset.infer_dataset.data_sources=[{{dataset_name: {cls}, data_file: {ann}}}]",
            "dataset.infer_dataset.batch_size=1",
        ]
        # eager fp32 for scoring: the GPU fast path would compile once per image size (a few images of many sizes)
        common = [
            *model_over,
            *[o for o in overrides if o.endswith("num_gpus=0")],
            "evaluate.optimize=false",
            "inference.optimize=false",
        ]
        rc_e, eval_s, eval_lines, _ = depth_net(
            "evaluate",
            spec_path,
            *common,
            *test,
            f"evaluate.checkpoint={train_dir}",
            f"evaluate.results_dir={work / 'eval' / group}",
        )
        kpi = eval_lines[-1].get("kpi", {}) if eval_lines else {}
        rc_i, _, _, inf_dir = depth_net(
            "inference",
            spec_path,
            *common,
            *infer,
            f"inference.checkpoint={train_dir}",
            "inference.save_raw_pfm=true",
            f"inference.results_dir={work / 'infer' / group}",
        )
        ours = {k: kpi.get(f"val/{k}") for k in ("epe", "bp2", "d1")}
        report["groups"][group] = {
            "images": kpi.get("val/images"),
            "exit_codes": [rc_e, rc_i],
            "ffs": ours,
            "sgbm": sgbm_scores(cls, ann, max_disp),
            "evaluate_s": round(eval_s, 1),
        }
        if args.pictures and rc_i == 0:
            picture(group, ann, inf_dir, cls, args.pictures / f"real_scenes_{group}.png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({g: {"ffs": v["ffs"], "sgbm": v["sgbm"]} for g, v in report["groups"].items()}, indent=1))


if __name__ == "__main__":
    main()
