"""Run one depth_net action with TAO's results contract.

Load and validate the spec, resolve the results folder, save experiment.yaml, write STARTED, run the
action, and write exactly one SUCCESS or FAILURE line. The exit code is 0 only on SUCCESS. A failure
prints one line; the traceback of an unexpected error goes to ``<results_dir>/error.log``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from skillbank.specs import ACTION_SPLITS, SpecError, load_spec, missing_requirements
from skillbank.specs.loading import parse_override, read_yaml_mapping, set_dotted

from .context import ActionContext, Reporter
from .data.errors import AnnotationError, DataFileError
from .errors import ActionError, ConfigurationError, DependencyError, FileSystemError, RunInterruptedError
from .results import guess_results_dir, resolve_results_dir, save_experiment
from .status import StatusLogger, is_rank_zero

log = logging.getLogger("depth_net")


def _setup_logging(results_dir: Path | None) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_depth_net", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(name)s: %(message)s", "%H:%M:%S"))
        handler._depth_net = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(os.environ.get("DEPTH_NET_LOG_LEVEL", "INFO"))
    if results_dir is not None and is_rank_zero():
        results_dir.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(results_dir / "depth_net.log", encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)


def _check_data_files(spec: Any, action: str) -> None:
    problems = []
    for split in ACTION_SPLITS.get(action, []):
        for i, source in enumerate(getattr(spec.dataset, split).data_sources):
            if not Path(source.data_file).is_file():
                problems.append(f"dataset.{split}.data_sources[{i}].data_file: file not found: {source.data_file}")
    if problems:
        extra = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise FileSystemError(problems[0] + extra)


def _failure_status_for_bad_spec(spec_path: str | None, overrides: list[str], action: str) -> StatusLogger | None:
    """Where a spec that failed validation should get its FAILURE line, if it names a results folder."""
    try:
        raw = read_yaml_mapping(spec_path) if spec_path else {}
        for text in overrides:
            try:
                key, value = parse_override(text)
                set_dotted(raw, key, value)
            except SpecError:
                continue
    except SpecError:
        return None
    base = Path(spec_path).resolve().parent if spec_path else Path.cwd()
    folder = guess_results_dir(raw, action, base)
    return StatusLogger(folder / "status.json") if folder else None


def _sigterm_to_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_action(action: str, spec_path: str | None, overrides: list[str]) -> int:
    """Run ``action``; returns the process exit code. SIGTERM is turned into an interrupt while the
    action runs (the train action then writes its interrupt checkpoint) and restored afterwards."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _sigterm_to_interrupt) if in_main else None
    try:
        return _run_action(action, spec_path, overrides)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run_action(action: str, spec_path: str | None, overrides: list[str]) -> int:
    status: StatusLogger | None = None
    try:
        try:
            spec = load_spec(spec_path, overrides)
        except SpecError:
            status = _failure_status_for_bad_spec(spec_path, overrides, action)
            raise
        results_dir = resolve_results_dir(spec, action)
        status = StatusLogger(results_dir / "status.json")
        problems = missing_requirements(spec, action)
        if problems:
            raise SpecError(problems)
        _check_data_files(spec, action)
        _setup_logging(results_dir)
        if is_rank_zero():
            save_experiment(spec, results_dir)
        status.write("STARTED", f"Starting depth_net {action} ({spec.model.model_type}).")
        from .actions import load_action

        ctx = ActionContext(
            action=action,
            spec=spec,
            results_dir=results_dir,
            report=Reporter(status),
            spec_path=Path(spec_path).resolve() if spec_path else None,
        )
        result = load_action(action)(ctx)
        status.write("SUCCESS", result.message, kpi=result.kpi, categorical=result.categorical)
        if is_rank_zero():
            print(f"depth_net {action}: SUCCESS: {result.message}", flush=True)
        return 0
    except SpecError as exc:
        return _fail(status, str(exc), 2 if exc.kind == "Configuration error" else 3)
    except KeyboardInterrupt:
        exc2 = RunInterruptedError(f"{action} stopped by the user or a signal")
        return _fail(status, str(exc2), exc2.exit_code)
    except ActionError as exc:
        return _fail(status, str(exc), exc.exit_code)
    except ModuleNotFoundError as exc:  # the core installs light; the runtime needs the [gpu] extra
        module = (exc.name or str(exc)).split(".")[0]
        hint = "install torch first (pip install torch), then pip install 'skillbank[gpu]'"
        return _fail(status, str(DependencyError(f"depth_net {action} needs the '{module}' package: {hint}")),
                     DependencyError.exit_code)
    except (AnnotationError, DataFileError) as exc:  # a data file found bad mid-run, named by file:line
        return _fail(status, str(FileSystemError(str(exc))), FileSystemError.exit_code)
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        return _fail(status, str(FileSystemError(_os_error_text(exc))), FileSystemError.exit_code)
    except Exception as exc:  # unexpected: one line, traceback to error.log
        where = _save_traceback(status)
        detail = f" (traceback in {where})" if where else ""
        return _fail(status, f"Execution error: {type(exc).__name__}: {exc}{detail}", 1)


def _os_error_text(exc: OSError) -> str:
    name = exc.filename if exc.filename is not None else ""
    return f"{name}: {exc.strerror or exc}" if name else str(exc)


def _save_traceback(status: StatusLogger | None) -> Path | None:
    if status is None or not is_rank_zero():
        traceback.print_exc()
        return None
    path = status.path.parent / "error.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(traceback.format_exc(), encoding="utf-8")
        return path
    except OSError:
        traceback.print_exc()
        return None


def _fail(status: StatusLogger | None, message: str, code: int) -> int:
    message = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    if status is not None:
        with contextlib.suppress(OSError):
            status.write("FAILURE", message, verbosity="ERROR")
    if is_rank_zero():
        print(f"depth_net: FAILURE: {message}", file=sys.stderr, flush=True)
    return code


__all__ = ["ConfigurationError", "run_action"]
