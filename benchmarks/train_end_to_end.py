"""End-to-end ``depth_net train`` throughput: Lightning, data loading and augmentation included.

Renders ``--pairs`` synthetic stereo pairs (``runtime.data.synthetic``), writes an FFS bp2 train spec
(crop 320x736, batch 2, 22 iterations, ``--precision``, no validation) and runs ``depth_net train`` for
``--epochs`` epochs with the given ``train.*`` overrides (e.g. the speed switches). Pairs/s per epoch
come from the epoch's wall time in status.json (``time_per_epoch``, whole seconds; the first epoch
includes the cuDNN autotuning and the CUDA-graph capture, every epoch its data workers' start and the
last one the checkpoint), and ``steady_pairs_per_s`` from its kpi ``train_samples_per_s`` (the epoch
after its first 3 steps, so none of that: compare it with ``train_throughput.py``'s step).

    python benchmarks/train_end_to_end.py --work /tmp/e2e --out benchmarks/results/train_end_to_end_h100.json \\
        --pairs 768 train.cuda_graph=true train.channels_last=true train.compile=true train.pad_channels=true
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_short_run import TINY_WIDTHS, cli, render, status  # noqa: E402


def seconds(hms: str) -> int:
    h, m, s = (int(x) for x in hms.split(":"))
    return 3600 * h + 60 * m + s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--pairs", type=int, default=192)
    p.add_argument("--size", type=int, nargs=2, default=[384, 768])
    p.add_argument("--crop", type=int, nargs=2, default=[320, 736])
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--precision", default="bf16")
    p.add_argument("--tiny", action="store_true", help="CPU smoke test with tiny widths")
    p.add_argument("overrides", nargs="*", help="extra depth_net overrides, e.g. train.cuda_graph=true")
    args = p.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sources = render(args.work, args.pairs, *args.size, 192 if not args.tiny else 48, procs=8)
    render_s = time.perf_counter() - t0
    model = {"model_type": "FastFoundationStereo"}
    if args.tiny:
        model.update(max_disparity=64, volume_dim=8, train_iters=3, **TINY_WIDTHS)
    spec = {
        "results_dir": str(args.work / "results"),
        "model": model,
        "dataset": {"train_dataset": {
            "data_sources": [{"dataset_name": "GenericDataset", "data_file": s} for s in sources],
            "batch_size": args.batch, "workers": args.workers, "augmentation": {"crop_size": list(args.crop)}}},
        "train": {"num_gpus": 0 if args.tiny else 1, "num_epochs": args.epochs, "precision": args.precision,
                  "checkpoint_interval": args.epochs, "optim": {"lr": 1e-4, "lr_scheduler": "LambdaLR"}},
    }
    spec_path = args.work / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    code, wall = cli("train", spec_path, *args.overrides)
    events = status(args.work / "results" / "train")
    running = [e for e in events if e.get("status") == "RUNNING"]
    steps_per_epoch = args.pairs // args.batch
    report = {
        "what": "depth_net train end to end (Lightning + data loading + augmentation), FFS bp2, synthetic pairs",
        "overrides": args.overrides,
        "precision": args.precision,
        "pairs": args.pairs, "batch": args.batch, "crop": args.crop,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "render_s": round(render_s, 1),
        "exit_code": code,
        "wall_s": round(wall, 1),
        "epochs": [{"epoch": e["categorical"]["epoch"], "time_per_epoch": e["categorical"]["time_per_epoch"],
                    "pairs_per_s": round(steps_per_epoch * args.batch
                                         / max(seconds(e["categorical"]["time_per_epoch"]), 1), 2),
                    "steady_pairs_per_s": e.get("kpi", {}).get("train_samples_per_s")}
                   for e in running],
        "final_status": events[-1] if events else None,
    }
    try:
        import torch

        report["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001
        report["device"] = "unknown"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("exit_code", "epochs", "device")}))


if __name__ == "__main__":
    main()
