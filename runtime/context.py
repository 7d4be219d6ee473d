"""What an action receives and returns. Actions report events; only the runner writes STARTED/SUCCESS/FAILURE."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillbank.runtime.status import StatusLogger
from skillbank.specs import ExperimentSpec


class Reporter:
    """The action's handle on status.json: progress events only (RUNNING, SKIPPED)."""

    def __init__(self, logger: StatusLogger) -> None:
        self._logger = logger

    def running(
        self,
        message: str,
        *,
        kpi: dict[str, Any] | None = None,
        categorical: dict[str, Any] | None = None,
        graphical: dict[str, Any] | None = None,
        verbosity: str = "INFO",
    ) -> None:
        self._logger.write(
            "RUNNING", message, kpi=kpi, categorical=categorical, graphical=graphical, verbosity=verbosity
        )

    def skipped(self, message: str) -> None:
        self._logger.write("SKIPPED", message)


@dataclass
class ActionContext:
    """Everything an action needs: the validated spec, its results folder and the status reporter."""

    action: str
    spec: ExperimentSpec
    results_dir: Path
    report: Reporter
    spec_path: Path | None = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("depth_net"))


@dataclass
class ActionResult:
    """What a successful action hands back: the SUCCESS message and its kpi."""

    message: str
    kpi: dict[str, Any] = field(default_factory=dict)
    categorical: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
