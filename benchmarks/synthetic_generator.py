"""Speed of the synthetic stereo generator per CPU core, and a picture grid of its samples.

Measures at 384x768 (max_disparity 192, default knobs), OpenCV on one thread:
* CPU seconds per pair in one process (``time.process_time``: the per-core cost, robust to other
  load on a shared machine), after building the texture bank once (its cost is reported apart);
* wall-clock pairs/s of ``generate_synthetic_stereo`` writing PNG/PFM files with 1 and N processes.

Writes the JSON result and, with --grid, a PNG grid (left | right | disparity) of samples.

Run:  python benchmarks/synthetic_generator.py --out benchmarks/results/synthetic_generator_cpu2.json \
          --grid docs/images/synthetic_samples.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from skillbank.runtime.data.io import colorize_disparity
from skillbank.runtime.data.synthetic import generate_synthetic_stereo, render_stereo_pair
from skillbank.runtime.data.synthetic.textures import texture_bank


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _grid(path: Path, rows: int, height: int, width: int) -> None:
    tiles = []
    for i in range(rows):
        p = render_stereo_pair(np.random.default_rng([2024, i]), height, width, 192)
        tiles.append(np.concatenate([p.left, p.right, colorize_disparity(p.disparity, max_value=192)], axis=1))
    grid = np.concatenate(tiles, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="JSON result file")
    ap.add_argument("--pairs", type=int, default=40, help="pairs timed in one process")
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
    cpu = []
    for i in range(args.pairs):
        start = time.process_time()
        render_stereo_pair(np.random.default_rng([0, i]), args.height, args.width, 192)
        cpu.append(time.process_time() - start)

    written = {}
    for workers in sorted({1, os.cpu_count() or 1}):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            generate_synthetic_stereo(tmp, args.write_pairs, args.height, args.width, 192, workers=workers)
            written[str(workers)] = round(args.write_pairs / (time.perf_counter() - start), 2)

    result = {
        "benchmark": "synthetic_generator",
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]},
        "size": [args.height, args.width],
        "max_disparity": 192,
        "texture_bank_build_cpu_s": round(bank_s, 3),
        "render_cpu_ms_per_pair": {
            "median": round(1000 * float(np.median(cpu)), 1),
            "p90": round(1000 * float(np.percentile(cpu, 90)), 1),
            "mean": round(1000 * float(np.mean(cpu)), 1),
        },
        "pairs_per_s_per_core": round(1.0 / float(np.median(cpu)), 1),
        "write_pairs_per_s_wall": written,
        "note": "render = in memory; write = PNG + PFM + mask files, wall clock, shared machine (see load).",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if args.grid:
        _grid(args.grid, 6, 192, 384)


if __name__ == "__main__":
    main()
