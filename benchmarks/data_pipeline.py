"""Throughput of the stereo training data pipeline on the CPU (synthetic data).

Measures, at the usual FFS training crop of 320x736:
* per-sample milliseconds in the main process, split into file loading (PNG + PFM decode) and
  the augmentation (scale/stretch, shifts, flips, crop, colour, eraser, normalise);
* DataLoader samples/s with 0 and 2 worker processes (batch size 2, stereo_collate);
* the synthetic generator's time per 320x736 pair.

Run:  python benchmarks/data_pipeline.py  [--pairs 12 --height 480 --width 960 --samples 48]
Writes benchmarks/results/data_pipeline_cpu2.json (name it after the machine with --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from cpu_info import cpu_model
from torch.utils.data import DataLoader

from skillbank.runtime.data.stereo_datasets import build_stereo_dataset, stereo_collate
from skillbank.runtime.data.synthetic import generate_synthetic_stereo, render_stereo_pair

RESULTS = Path(__file__).resolve().parent / "results"


def _loader_rate(dataset, workers: int, samples: int, batch_size: int) -> float:
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=stereo_collate,
        persistent_workers=workers > 0,  # steady state: worker start-up is not part of the rate
    )
    seen, start = 0, None
    for _ in range(100):
        for batch in loader:
            if start is None:  # the first batch pays for worker start-up; time from here
                start = time.perf_counter()
                continue
            seen += batch["left"].shape[0]
            if seen >= samples:
                return seen / (time.perf_counter() - start)
    raise RuntimeError("not enough samples")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--max-disparity", type=int, default=192)
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "data_pipeline_cpu2.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]

    render_stereo_pair(np.random.default_rng(0), 320, 736, args.max_disparity)
    gen_times = []
    for i in range(5):
        t = time.perf_counter()
        render_stereo_pair(np.random.default_rng(i + 1), 320, 736, args.max_disparity)
        gen_times.append(time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        ann = generate_synthetic_stereo(tmp, args.pairs, args.height, args.width, args.max_disparity, seed=0)
        write_s = (time.perf_counter() - t) / args.pairs
        split = {
            "data_sources": [{"dataset_name": "GenericDataset", "data_file": str(ann)}],
            "augmentation": {"crop_size": [320, 736], "do_flip": True},  # other keys: spec defaults
        }
        ds = build_stereo_dataset(split, max_disparity=args.max_disparity, train=True, seed=0)
        ds[0]
        load_ms, total_ms, cpu_ms = [], [], []
        for i in range(args.samples // 2):
            idx = i % len(ds)
            t0 = time.perf_counter()
            ds.load(idx)
            t1 = time.perf_counter()
            c1 = time.process_time()
            ds[idx]
            cpu_ms.append(1000 * (time.process_time() - c1))  # CPU time: robust to a busy shared machine
            t2 = time.perf_counter()
            load_ms.append(1000 * (t1 - t0))
            total_ms.append(1000 * (t2 - t1))
        rates = {f"workers_{w}": _loader_rate(ds, w, args.samples, args.batch_size) for w in (0, 2)}

    result = {
        "benchmark": "stereo train data pipeline (synthetic PNG + PFM files, spec-default augmentation, do_flip)",
        "machine": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads_main": 1,
            "load_average_1m_before": round(load_before, 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
            "note": "shared 2-core VM; other jobs may run at the same time (see load averages)",
        },
        "source_size": [args.height, args.width],
        "crop_size": [320, 736],
        "batch_size": args.batch_size,
        "per_sample_ms": {
            "load_files_median": round(float(np.median(load_ms)), 2),
            "load_plus_augment_median": round(float(np.median(total_ms)), 2),
            "augment_median": round(float(np.median(total_ms) - np.median(load_ms)), 2),
            "load_plus_augment_cpu_time_median": round(float(np.median(cpu_ms)), 2),
        },
        "dataloader_samples_per_s": {k: round(v, 2) for k, v in rates.items()},
        "synthetic_generator": {
            "render_320x736_ms_median": round(1000 * float(np.median(gen_times)), 1),
            "render_and_write_per_pair_ms": round(1000 * write_s, 1),
            "write_size": [args.height, args.width],
        },
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp_out, args.out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
