"""Run one depth_net action with TAO's results contract.

Load and validate the spec, resolve the results folder, write STARTED, check what the action needs,
save experiment.yaml, run the action, and write exactly one SUCCESS or FAILURE line. The exit code is
0 only on SUCCESS. A failure prints one line on stderr; the traceback of an unexpected error goes to
``<results_dir>/error.log``, never to the terminal.

The status rule: when the run's results folder is known, its ``status.json`` gets STARTED first and then
exactly one SUCCESS or FAILURE line, whatever ended the run, a rejected spec included (a spec that fails
validation still names its folder through the ``results_dir`` keys it sets, in the file or on the command
line). When no results folder can be known (no spec given; the spec file missing, empty or not YAML; no
``results_dir`` set) nothing is written anywhere, and the terminal line ends with
"(no results folder: nothing written)". Either way the exit code tells the outcome.

Errors become exit codes in one place, :func:`translate_error`: 2 configuration error, 3 file system
error, 4 training diverged, 5 not implemented, 6 missing optional dependency, 130 interrupted, 1 anything
else. An error raised in a DataLoader worker is judged as the exception the worker raised.
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

import yaml

from skillbank.atomic import atomic_write
from skillbank.runtime.context import ActionContext, Reporter
from skillbank.runtime.data.worker_errors import original_error
from skillbank.runtime.errors import (
    ActionError,
    ConfigurationError,
    DependencyError,
    FileSystemError,
    RunInterruptedError,
)
from skillbank.runtime.results import guess_results_dir, resolve_results_dir, save_experiment
from skillbank.runtime.status import StatusLogger, is_rank_zero
from skillbank.specs import ACTION_SPLITS, SpecError, load_spec, missing_requirements
from skillbank.specs.dotted import set_dotted
from skillbank.specs.loading import parse_override, read_yaml_mapping

log = logging.getLogger("depth_net")

#: The end of the terminal line of a failure that has no results folder to write to.
NOTHING_WRITTEN = "no results folder: nothing written"


class _StderrHandler(logging.StreamHandler):
    """A stream handler writing to whatever ``sys.stderr`` is when a record is logged, so that runs in
    one process (tests, notebooks) that swap stderr between them do not log into a closed stream."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _setup_logging(results_dir: Path | None) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_depth_net", False) for h in root.handlers):
        handler = _StderrHandler()
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


def _status_for_rejected_spec(spec_path: str, overrides: list[str], action: str) -> StatusLogger | None:
    """Where a spec that failed to load gets its STARTED and FAILURE lines: the results folder its
    ``results_dir`` keys name (in the file or on the command line), if they name one."""
    try:
        raw = read_yaml_mapping(spec_path)
    except SpecError:  # a file refused as a whole (a dotted or repeated key) may still name its folder
        try:
            plain = yaml.safe_load(Path(spec_path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            plain = None
        raw = plain if isinstance(plain, dict) else {}
    for text in overrides:
        try:
            key, value = parse_override(text)
            set_dotted(raw, key, value)
        except SpecError:
            continue
    folder = guess_results_dir(raw, action, Path(spec_path).resolve().parent)
    return StatusLogger(folder / "status.json") if folder else None


def _started(status: StatusLogger, action: str, model_type: str | None) -> StatusLogger:
    what = f" ({model_type})" if model_type else ""
    status.write("STARTED", f"Starting depth_net {action}{what}.")
    return status


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
        if spec_path is None:
            raise ConfigurationError(
                f"no spec given: name the experiment spec with -e, e.g. depth_net {action} "
                "-e spec.yaml [dotted.key=value ...]"
            )
        try:
            spec = load_spec(spec_path, overrides)
        except SpecError:
            status = _status_for_rejected_spec(spec_path, overrides, action)
            if status is not None:
                with contextlib.suppress(OSError):  # an unwritable folder must not hide the spec's problem
                    _started(status, action, None)
            raise
        results_dir = resolve_results_dir(spec, action)
        status = _started(StatusLogger(results_dir / "status.json"), action, spec.model.model_type)
        problems = missing_requirements(spec, action)
        if problems:
            raise SpecError(problems)
        _check_data_files(spec, action)
        _setup_logging(results_dir)
        if is_rank_zero():
            save_experiment(spec, results_dir)
        from skillbank.runtime.actions import load_action

        ctx = ActionContext(
            action=action,
            spec=spec,
            results_dir=results_dir,
            report=Reporter(status),
            spec_path=Path(spec_path).resolve(),
        )
        result = load_action(action)(ctx)
        status.write("SUCCESS", result.message, kpi=result.kpi, categorical=result.categorical)
        if is_rank_zero():
            print(f"depth_net {action}: SUCCESS: {result.message}", flush=True)
        return 0
    except (Exception, KeyboardInterrupt) as exc:
        failure = translate_error(exc, action)
        if failure is None:  # unexpected: one line, traceback to error.log
            shown = original_error(exc) or exc
            where = _save_traceback(status)
            detail = f" (traceback in {where})" if where else ""
            failure = f"Execution error: {type(shown).__name__}: {shown}{detail}", 1
        return _fail(status, *failure)


# The class of an error raised by the data or checkpoint code (or by the OS) -> the failure it is. Classes
# are named by module path so that the runner imports no torch; the most derived class listed decides.
_KINDS: dict[str, type[ActionError]] = {
    f"{__package__}.data.errors.DataFileError": FileSystemError,
    f"{__package__}.data.errors.AnnotationError": FileSystemError,
    f"{__package__}.checkpoints.errors.CheckpointNotFoundError": FileSystemError,
    f"{__package__}.checkpoints.errors.CheckpointError": ConfigurationError,
    "builtins.FileNotFoundError": FileSystemError,
    "builtins.PermissionError": FileSystemError,
    "builtins.IsADirectoryError": FileSystemError,
    "builtins.NotADirectoryError": FileSystemError,
}


def translate_error(exc: BaseException, action: str) -> tuple[str, int] | None:
    """(one-line message, exit code) of an error that ended ``action``; None for an unexpected one.

    This is the one place where errors become exit codes. An error raised in a DataLoader worker is
    judged as the original exception (:func:`.data.worker_errors.original_error`), so ``workers > 0``
    fails with the same line and code as ``workers 0``. An error raised under
    :func:`.errors.concerning` is prefixed with what it concerns, and a ValueError there is a
    configuration error."""
    exc = original_error(exc) or exc
    concerns = getattr(exc, "concerns", None)
    keyed = f"{concerns}: " if concerns else ""
    if isinstance(exc, KeyboardInterrupt):
        interrupted = RunInterruptedError(f"{action} stopped by the user or a signal")
        return str(interrupted), interrupted.exit_code
    if isinstance(exc, SpecError):
        spec_kind = ConfigurationError if exc.kind == ConfigurationError.prefix else FileSystemError
        return str(exc), spec_kind.exit_code
    if isinstance(exc, ActionError):
        return str(exc), exc.exit_code
    if isinstance(exc, ModuleNotFoundError):  # the core installs light; the runtime needs the [gpu] extra
        module = (exc.name or str(exc)).split(".")[0]
        hint = "install torch first (pip install torch), then pip install 'skillbank[gpu]'"
        missing = DependencyError(f"depth_net {action} needs the '{module}' package: {hint}")
        return str(missing), missing.exit_code
    kind = next((k for c in type(exc).__mro__ if (k := _KINDS.get(f"{c.__module__}.{c.__qualname__}"))), None)
    if kind is None and concerns and isinstance(exc, ValueError):
        kind = ConfigurationError
    if kind is None:
        return None
    text = _os_error_text(exc) if isinstance(exc, OSError) else str(exc)
    return str(kind(f"{keyed}{text}")), kind.exit_code


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
        return atomic_write(path, traceback.format_exc())
    except OSError:
        traceback.print_exc()
        return None


def _fail(status: StatusLogger | None, message: str, code: int) -> int:
    message = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    if status is not None:
        with contextlib.suppress(OSError):
            status.write("FAILURE", message, verbosity="ERROR")
    if is_rank_zero():
        nowhere = "" if status is not None else f" ({NOTHING_WRITTEN})"
        print(f"depth_net: FAILURE: {message}{nowhere}", file=sys.stderr, flush=True)
    return code


__all__ = ["ConfigurationError", "run_action", "translate_error"]
