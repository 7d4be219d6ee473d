"""``depth_net`` with a clock on every training step: the entry point the GPU AutoML study gives its trials.

Behaves exactly like ``depth_net <action> -e spec.yaml`` and also writes ``step_times.json`` in the run's
folder (the trial folder, its working directory): seconds from this process's start to the end of each
training step (the GPU synchronised first), the step durations and the time to the first fast step
(the first step within 1.5x the median of the last half of the steps). Used by automl_gpu_study.py.
"""

from __future__ import annotations

import time

T0 = time.time()  # before torch is imported: the trial's process start, near enough

import atexit  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

STEPS: list[float] = []


def first_fast(ends: list[float]) -> dict:
    if len(ends) < 4:
        return {"steps": len(ends)}
    durations = [b - a for a, b in zip(ends, ends[1:], strict=False)]
    steady = statistics.median(durations[len(durations) // 2 :])
    index = next(i for i, d in enumerate(durations) if d <= 1.5 * steady) + 1
    return {
        "steps": len(ends),
        "steady_step_s": round(steady, 4),
        "first_fast_step": index + 1,
        "time_to_first_fast_step_s": round(ends[index], 2),
        "first_step_end_s": round(ends[0], 2),
    }


def _save() -> None:
    if STEPS:
        out = {"step_end_s": [round(t, 3) for t in STEPS], **first_fast(STEPS)}
        Path("step_times.json").write_text(json.dumps(out, indent=2) + "\n")


def main() -> None:
    import torch

    from skillbank.runtime.cli import main as depth_net
    from skillbank.runtime.training import callbacks

    original = callbacks.StatusReporter.on_train_batch_end

    def timed(self, trainer, pl_module, outputs, batch, batch_idx):  # noqa: ANN001, ANN202
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        STEPS.append(time.time() - T0)
        return original(self, trainer, pl_module, outputs, batch, batch_idx)

    callbacks.StatusReporter.on_train_batch_end = timed
    atexit.register(_save)
    sys.argv[0] = "depth_net"
    depth_net()


if __name__ == "__main__":
    main()
