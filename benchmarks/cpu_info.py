"""The processor's name for the CPU benchmarks' result files (``/proc/cpuinfo``'s model name)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """``model name`` of the first processor in ``/proc/cpuinfo``, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
