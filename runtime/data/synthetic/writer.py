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

__all__ = ["generate_synthetic_stereo", "render_process_setup"]


def render_process_setup() -> None:
    """Settle the process that renders pairs: OpenCV on one thread (the pool provides the parallelism)
    and, with glibc, freed arrays kept in the heap.

    A 384x768 pair allocates and frees about 10 MB of arrays; by default glibc hands blocks that large
    back to the kernel on free, so every pair faults its pages in again (about 2,500 page faults,
    4-6 ms of kernel time: a fifth of the pair's CPU cost). Raising the mmap and trim thresholds keeps
    them in the process (up to 128 MB held after a free). Elsewhere than glibc this does nothing."""
    import ctypes

    import cv2

    cv2.setNumThreads(1)
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library already loaded into this process
    except (OSError, AttributeError, TypeError):  # no mallopt here (not glibc)
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest allowed value
    mallopt(_M_TRIM_THRESHOLD, 128 << 20)


_MALLOC_TUNED = False
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def _write_pair(args: tuple) -> str:
    out, i, seed, height, width, max_disparity, config, write_right = args
    render_process_setup()
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
    parallel (0 = one per CPU core); ``progress(done, total)`` is called after each pair. Each process
    that renders (this one when ``workers`` is 1) is set up by :func:`render_process_setup`.
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
