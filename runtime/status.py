"""status.json: the JSON Lines event log TAO users and their scripts read (docs/spec_and_results.md).

One object per event: ``date`` (m/d/yyyy), ``time`` (h:m:s), ``status`` (STARTED | RUNNING | SUCCESS |
FAILURE | SKIPPED), ``verbosity``, ``message`` and optional ``kpi``, ``categorical``, ``graphical``.
:class:`StatusLogger` is the only writer. Each append rewrites the file with
:func:`skillbank.atomic.atomic_write` (temp file, fsync, ``os.replace``) so a reader never sees a
half-written line, even if the process dies mid-write.
Only rank 0 of a distributed run writes (see :func:`is_rank_zero`).
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from skillbank.atomic import atomic_write

STATUSES = ("STARTED", "RUNNING", "SUCCESS", "FAILURE", "SKIPPED")


def is_rank_zero() -> bool:
    """True unless this process is a non-zero rank of a distributed run."""
    for var in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        value = os.environ.get(var)
        if value not in (None, "", "0"):
            return False
    return True


def _clean(value: Any) -> Any:
    """JSON-safe numbers: NaN/inf become strings so the line stays valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _clean(value.item())
    return value


class StatusLogger:
    """Appends events to ``<results_dir>/status.json``."""

    def __init__(self, path: str | os.PathLike[str], *, enabled: bool | None = None) -> None:
        self.path = Path(path)
        self.enabled = is_rank_zero() if enabled is None else enabled

    def write(
        self,
        status: str,
        message: str,
        *,
        verbosity: str = "INFO",
        kpi: dict[str, Any] | None = None,
        categorical: dict[str, Any] | None = None,
        graphical: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if status not in STATUSES:
            raise ValueError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
        now = datetime.now()
        event: dict[str, Any] = {
            "date": f"{now.month}/{now.day}/{now.year}",
            "time": f"{now.hour}:{now.minute}:{now.second}",
            "status": status,
            "verbosity": verbosity,
            "message": message,
        }
        for key, value in (("kpi", kpi), ("categorical", categorical), ("graphical", graphical)):
            if value:
                event[key] = _clean(value)
        if self.enabled:
            old = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
            atomic_write(self.path, old + json.dumps(event) + "\n")
        return event


def read_status(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All events of a status.json file (for tests, the SDK and agents)."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
