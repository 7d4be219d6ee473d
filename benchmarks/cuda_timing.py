"""Timing helpers shared by the GPU benchmark scripts: CUDA events around each call, after warm-up, and
CUDA-graph capture."""

from __future__ import annotations

from collections.abc import Callable

import torch


def time_cuda(fn: Callable[[], object], runs: int, warmup: int) -> list[float]:
    """Milliseconds of each of ``runs`` calls of ``fn`` (device time between CUDA events), after
    ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def capture_graph(fn: Callable[[], object], warmup: int = 3) -> tuple[torch.cuda.CUDAGraph, object]:
    """Run ``fn`` ``warmup`` times on a side stream (cuDNN autotuning, allocator), then capture one
    call in a CUDA graph: ``(graph, what the captured call returned)`` (its tensors are the graph's
    static outputs, rewritten by every replay)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


def gpu_report(benchmark: str, results: dict, **fields: object) -> dict:
    """A benchmark's JSON report: what it measured, ``fields``, the GPU and library versions, the time."""
    import time

    return {"benchmark": benchmark, **fields, "device": torch.cuda.get_device_name(), "torch": torch.__version__,
            "cudnn": torch.backends.cudnn.version(), "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "results": results}


def write_report(path, report: dict) -> None:  # noqa: ANN001 - a pathlib.Path or None
    """Write ``report`` as indented JSON to ``path`` (if given), creating its folder."""
    if path is None:
        return
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
