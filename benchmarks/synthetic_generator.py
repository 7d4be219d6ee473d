"""Speed of the synthetic stereo generator per CPU core, and a picture grid of its samples.

Measures at 384x768 (max_disparity 192, default knobs), OpenCV on one thread:
* CPU seconds per pair in one process (``time.process_time``: the per-core cost, robust to other
  load on a shared machine), after building the texture bank once (its cost is reported apart): the
  median over ``--rounds`` rounds of ``--pairs`` pairs each, first with the default allocator, then
  set up as the writer sets up each rendering process (``render_process_setup``: glibc keeps freed
  arrays); the second is the headline;
* wall-clock pairs/s of ``generate_synthetic_stereo`` writing PNG/PFM files with 1 and N processes.

Writes the JSON result and, with --grid, a PNG grid (left | right | disparity) of samples.

Run:  python benchmarks/synthetic_generator.py --out benchmarks/results/synthetic_generator_cpu2.json \
          --grid docs/images/synthetic_samples.png
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from cpu_info import cpu_model

from skillbank.atomic import atomic_write
from skillbank.runtime.data.io import colorize_disparity, write_png
from skillbank.runtime.data.synthetic import generate_synthetic_stereo, render_stereo_pair
from skillbank.runtime.data.synthetic.textures import texture_bank
from skillbank.runtime.data.synthetic.writer import render_process_setup


def _grid(path: Path, rows: int, height: int, width: int) -> None:
    tiles = []
    for i in range(rows):
        p = render_stereo_pair(np.random.default_rng([2024, i]), height, width, 192)
        tiles.append(np.concatenate([p.left, p.right, colorize_disparity(p.disparity, max_value=192)], axis=1))
    write_png(path, np.concatenate(tiles, axis=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="JSON result file")
    ap.add_argument("--pairs", type=int, default=40, help="pairs timed per round in one process")
    ap.add_argument("--rounds", type=int, default=5, help="rounds timed (the median of their medians)")
    ap.add_argument("--height", type=int, default=384)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--write-pairs", type=int, default=24, help="pairs written to disk per process count")
    ap.add_argument("--grid", type=Path, help="also write a PNG grid of samples here")
    args = ap.parse_args()
    cv2.setNumThreads(1)

    start = time.process_time()
    texture_bank(0)
    bank_s = time.process_time() - start
    render_stereo_pair(np.random.default_rng([0, 10**6]), args.height, args.width, 192)  # warm-up

    def rounds() -> list[list[float]]:
        out = []
        for _ in range(args.rounds):
            cpu = []
            for i in range(args.pairs):
                start = time.process_time()
                render_stereo_pair(np.random.default_rng([0, i]), args.height, args.width, 192)
                cpu.append(time.process_time() - start)
            out.append(cpu)
        return out

    def summary(per_round: list[list[float]]) -> dict:
        medians = [float(np.median(c)) for c in per_round]
        every = np.concatenate(per_round)
        return {
            "median": round(1000 * float(np.median(medians)), 1),
            "round_medians": [round(1000 * m, 1) for m in medians],
            "p90": round(1000 * float(np.percentile(every, 90)), 1),
            "mean": round(1000 * float(np.mean(every)), 1),
        }

    default_alloc = summary(rounds())
    render_process_setup()  # as each rendering process of the writer runs
    render_stereo_pair(np.random.default_rng([0, 10**6]), args.height, args.width, 192)
    load_before = os.getloadavg()[0]
    headline = summary(rounds())
    load_after = os.getloadavg()[0]

    written = {}
    for workers in sorted({1, os.cpu_count() or 1}):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            generate_synthetic_stereo(tmp, args.write_pairs, args.height, args.width, 192, workers=workers)
            written[str(workers)] = round(args.write_pairs / (time.perf_counter() - start), 2)

    result = {
        "benchmark": "synthetic_generator",
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "load_avg_1min": [round(load_before, 2), round(load_after, 2)],
        },
        "size": [args.height, args.width],
        "max_disparity": 192,
        "texture_bank_build_cpu_s": round(bank_s, 3),
        "render_cpu_ms_per_pair": headline,
        "render_cpu_ms_per_pair_default_allocator": default_alloc,
        "pairs_per_s_per_core": round(1000.0 / headline["median"], 1),
        "write_pairs_per_s_wall": written,
        "note": "render = in memory, set up as the writer's processes (render_process_setup), CPU time; "
        "write = PNG + PFM + mask files, wall clock; shared machine: the 1-min load average before and "
        "after the headline rounds.",
    }
    atomic_write(args.out, (json.dumps(result, indent=2) + "\n").encode())
    print(json.dumps(result, indent=2))
    if args.grid:
        _grid(args.grid, 6, 192, 384)


if __name__ == "__main__":
    main()
