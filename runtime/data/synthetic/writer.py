"""Write a synthetic set to disk: images, PFM disparity, nocc masks and a 4-column annotation file.

Pair ``i`` is rendered from ``numpy.random.default_rng([seed, i])`` and the texture bank from
``config.texture_seed``, so the bytes do not depend on how many processes render them.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from skillbank.atomic import atomic_write
from skillbank.runtime.data.io import write_pfm, write_png
from skillbank.runtime.data.synthetic.render import render_stereo_pair

__all__ = ["generate_synthetic_stereo"]


def _write_pair(args: tuple) -> str:
    out, i, seed, height, width, max_disparity, config, write_right = args
    import cv2

    cv2.setNumThreads(1)  # one core per process: the pool provides the parallelism
    pair = render_stereo_pair(np.random.default_rng([int(seed), i]), int(height), int(width), max_disparity, config)
    stem = f"{i:06d}"
    write_png(out / "left" / f"{stem}.png", pair.left)
    write_png(out / "right" / f"{stem}.png", pair.right)
    write_pfm(out / "disparity" / f"{stem}.pfm", pair.disparity)
    write_png(out / "nocc" / f"{stem}.png", pair.nocc)
    if write_right:
        write_pfm(out / "disparity_right" / f"{stem}.pfm", pair.disparity_right)
    return f"left/{stem}.png right/{stem}.png disparity/{stem}.pfm nocc/{stem}.png"


def generate_synthetic_stereo(
    out_dir: str | os.PathLike,
    num_pairs: int,
    height: int,
    width: int,
    max_disparity: float,
    seed: int = 0,
    *,
    config=None,
    workers: int = 1,
    write_right_disparity: bool = False,
    annotation_name: str = "synthetic.txt",
    progress=None,
) -> Path:
    """Write ``num_pairs`` pairs under ``out_dir`` and return the annotation file path.

    Layout: ``left/NNNNNN.png``, ``right/NNNNNN.png``, ``disparity/NNNNNN.pfm`` (left view, float32),
    ``nocc/NNNNNN.png`` (255 = non-occluded), optionally ``disparity_right/NNNNNN.pfm``, and
    ``<annotation_name>`` with 4 columns and paths relative to ``out_dir`` (readable by every
    dataset class that reads PFM: GenericDataset, Middlebury, Eth3d). ``workers`` processes render in
    parallel (0 = one per CPU core); ``progress(done, total)`` is called after each pair.
    """
    out = Path(out_dir)
    jobs = [(out, i, seed, height, width, max_disparity, config, write_right_disparity) for i in range(int(num_pairs))]
    workers = (os.cpu_count() or 1) if workers == 0 else workers
    lines: list[str] = []
    if workers <= 1 or len(jobs) <= 1:
        results = map(_write_pair, jobs)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)))
        results = pool.map(_write_pair, jobs, chunksize=max(1, len(jobs) // (8 * workers)))
    try:
        for n, line in enumerate(results, 1):
            lines.append(line)
            if progress is not None:
                progress(n, len(jobs))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    annotation = out / annotation_name
    header = f"# synthetic stereo: {num_pairs} pairs {height}x{width}, max_disparity {max_disparity}, seed {seed}\n"
    atomic_write(annotation, (header + "\n".join(lines) + "\n").encode())
    return annotation
