"""A short real FFS training run from scratch through the depth_net CLI, scored on Middlebury before/after.

1. Render ``--pairs`` synthetic stereo pairs with exact disparity (``runtime.data.synthetic``, in
   parallel chunks, one annotation file per chunk = one data source each).
2. Save the randomly initialised network (seed 0) as ``init.pth``.
3. ``depth_net evaluate`` of ``init.pth`` on the Middlebury scenes (native size).
4. ``depth_net train`` from ``init.pth`` (``train.pretrained_model_path``) for a time budget: the number
   of epochs comes from ``--pairs-per-s`` (measured by train_throughput.py) and ``--budget-s``.
5. ``depth_net evaluate`` of the trained run's newest checkpoint on the same scenes.

Writes one JSON with the before/after kpi, the per-epoch status lines and the end-to-end pairs/s
(Lightning + data loading included). ``--tiny`` runs a CPU-sized version (tiny widths) as a smoke test.

    python benchmarks/train_short_run.py --middlebury .devdata/middlebury --work /tmp/short \
        --out benchmarks/results/train_short_run_h200.json --pairs 384 --pairs-per-s 26 --budget-s 140 \
        train.cuda_graph=true train.channels_last=true train.compile=true train.pad_channels=true
    python benchmarks/train_short_run.py --middlebury .devdata/middlebury --work /tmp/short --out /tmp/s.json --tiny
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import yaml

TINY_WIDTHS: dict[str, Any] = {
    "motion_encoder_widths": [8, 8, 4, 4], "motion_encoder_final": 8, "gru_hidden": 8,
    "gru_gating_conv_widths": [8, 8], "disp_head_input_dim": 8, "disp_head_intermediate": 8,
    "disp_head_pwconv1_widths": [8, 8], "mask_widths": [8, 8], "stem_2_widths": [8, 8],
    "spx_2_gru_widths": [8, 8, 8, 8], "spx_gru_out": 9, "classifier_mid": 4, "cnet_conv04_widths": [8, 8],
    "cam_mid_channels": 2, "cost_agg_conv_patch_padding": [0, 0, 0],
}


def _render(job: tuple[str, int, int, int, int, int]) -> str:
    from skillbank.runtime.data.synthetic import generate_synthetic_stereo

    out, n, h, w, max_disp, seed = job
    return str(generate_synthetic_stereo(out, n, h, w, max_disp, seed=seed, annotation_name="pairs.txt"))


def render(work: Path, pairs: int, height: int, width: int, max_disp: int, procs: int) -> list[str]:
    chunk = max(1, math.ceil(pairs / procs))
    jobs = [(str(work / f"synthetic_{i:02d}"), min(chunk, pairs - i * chunk), height, width, max_disp, 100 + i)
            for i in range(procs) if pairs - i * chunk > 0]
    with ProcessPoolExecutor(len(jobs)) as pool:
        return list(pool.map(_render, jobs))


def middlebury_annotation(root: Path, out: Path) -> Path:
    scenes = sorted(p for p in root.iterdir() if (p / "disp0GT.pfm").is_file())
    lines = [" ".join(str(s / f) for f in ("im0.png", "im1.png", "disp0GT.pfm", "mask0nocc.png")) for s in scenes]
    out.write_text("\n".join(lines) + "\n")
    return out


def cli(action: str, spec: Path, *overrides: str, timeout: float | None = None) -> tuple[int, float]:
    """Run the CLI; past ``timeout`` seconds send SIGTERM (train then writes an interrupt checkpoint)."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "skillbank.runtime.cli", action, "-e", str(spec), *overrides]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate()
    print(f"$ depth_net {action} {' '.join(overrides)} -> exit {proc.returncode}", flush=True)
    print(out[-1500:], err[-3000:], sep="\n", flush=True)
    return proc.returncode, time.perf_counter() - t0


def status(folder: Path) -> list[dict[str, Any]]:
    path = folder / "status.json"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--middlebury", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--pairs", type=int, default=256)
    p.add_argument("--size", type=int, nargs=2, default=[384, 768])
    p.add_argument("--crop", type=int, nargs=2, default=[320, 736])
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--pairs-per-s", type=float, default=5.0)
    p.add_argument("--budget-s", type=float, default=150.0)
    p.add_argument("--precision", default="bf16")
    p.add_argument("--train-timeout-s", type=float, default=None, help="SIGTERM the train run after this long")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--tiny", action="store_true", help="CPU smoke test with tiny widths")
    p.add_argument("overrides", nargs="*", help="extra depth_net train overrides, e.g. train.compile=true")
    args = p.parse_args()

    import torch

    from skillbank.runtime.checkpoints import save_checkpoint_atomic
    from skillbank.runtime.networks.factory import build_network
    from skillbank.specs import load_spec

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    annotations = render(work, args.pairs, *args.size, max_disp=80, procs=min(12, os.cpu_count() or 1))
    render_s = time.perf_counter() - t0
    mb = middlebury_annotation(args.middlebury.resolve(), work / "middlebury.txt")

    model: dict[str, Any] = {"model_type": "FastFoundationStereo"}
    if args.tiny:
        model.update(max_disparity=96, volume_dim=8, train_iters=3, valid_iters=3, **TINY_WIDTHS)
    gpus = 0 if args.tiny or not torch.cuda.is_available() else 1
    epoch_pairs = (args.pairs // args.batch) * args.batch
    epochs = max(1, round(args.budget_s * args.pairs_per_s / epoch_pairs))
    workers = min(12, os.cpu_count() or 1)
    aug = {"crop_size": list(args.crop), "min_scale": -0.2, "max_scale": 0.2, "eraser_aug_prob": 0.0,
           "yjitter_prob": 0.0}
    spec: dict[str, Any] = {
        "results_dir": str(work / "results"),
        "model": model,
        "dataset": {
            "train_dataset": {"data_sources": [{"dataset_name": "GenericDataset", "data_file": a} for a in annotations],
                              "batch_size": args.batch, "workers": workers, "augmentation": aug},
            "test_dataset": {"data_sources": [{"dataset_name": "Middlebury", "data_file": str(mb)}],
                             "batch_size": 1, "workers": 2},
        },
        "train": {"num_gpus": gpus, "num_epochs": epochs, "precision": args.precision, "clip_grad_norm": 1.0,
                  "seed": 0, "checkpoint_interval": max(1, epochs), "log_every_n_steps": 20,
                  "optim": {"lr": args.lr, "lr_scheduler": "OneCycleLR", "warmup_steps": 20, "min_lr": 1e-6}},
        "evaluate": {"num_gpus": gpus},
    }
    spec_path = work / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    torch.manual_seed(0)
    net = build_network(load_spec(spec_path).model)
    init = save_checkpoint_atomic({"state_dict": net.state_dict()}, work / "init.pth")

    rc_before, eval_before_s = cli("evaluate", spec_path, f"evaluate.checkpoint={init}",
                                   f"evaluate.results_dir={work / 'eval_before'}")
    rc_train, train_s = cli("train", spec_path, f"train.pretrained_model_path={init}", *args.overrides,
                            timeout=args.train_timeout_s)
    rc_after, eval_after_s = cli("evaluate", spec_path, f"evaluate.checkpoint={work / 'results' / 'train'}",
                                 f"evaluate.results_dir={work / 'eval_after'}")

    before = status(work / "eval_before")
    train = status(work / "results" / "train")
    after = status(work / "eval_after")
    epochs_run = [e for e in train if e["status"] == "RUNNING"]
    seconds = [sum(int(x) * 60**i for i, x in enumerate(reversed(e["categorical"]["time_per_epoch"].split(":"))))
               for e in epochs_run]
    report = {
        "what": "FFS bp2 from random init, trained on synthetic pairs via depth_net train, scored by depth_net "
                "evaluate on Middlebury (cones, teddy, tsukuba, venus; native size, valid and non-occluded pixels)",
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "synthetic": {"pairs": args.pairs, "size": args.size, "max_disparity": 80, "render_s": round(render_s, 1)},
        "train_overrides": args.overrides,
        "train_spec": spec["train"] | {"crop": args.crop, "batch": args.batch, "train_iters": load_spec(spec_path)
                                       .model.train_iters},
        "exit_codes": {"evaluate_before": rc_before, "train": rc_train, "evaluate_after": rc_after},
        "wall_s": {"evaluate_before": round(eval_before_s, 1), "train": round(train_s, 1),
                   "evaluate_after": round(eval_after_s, 1)},
        "evaluate_before": before[-1].get("kpi") if before else None,
        "evaluate_after": after[-1].get("kpi") if after else None,
        "epochs": [{"epoch": e["categorical"]["epoch"], "step": e["categorical"]["step"],
                    "train_loss": e["kpi"].get("train_loss"), "time_per_epoch": e["categorical"]["time_per_epoch"]}
                   for e in epochs_run],
        "end_to_end_pairs_per_s": round(epoch_pairs * len(seconds) / max(sum(seconds), 1), 2) if seconds else None,
        "train_final_status": train[-1] if train else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("evaluate_before", "evaluate_after", "end_to_end_pairs_per_s")}))


if __name__ == "__main__":
    main()
