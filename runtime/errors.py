"""Typed failures of depth_net actions: each has a status.json message prefix and an exit code.

An action raises one of these, or lets an error of the data, checkpoint or spec code through (naming
what it concerns with :func:`concerning`); the runner (:mod:`.runner`) is the one place that turns any
of them into a FAILURE line and an exit code. Nothing else writes FAILURE.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress


class ActionError(RuntimeError):
    """Base of typed action failures."""

    prefix = "Execution error"
    exit_code = 1

    def __str__(self) -> str:
        return f"{self.prefix}: {super().__str__()}"


class ConfigurationError(ActionError):
    """The spec asks for something that cannot run (found after validation, e.g. a checkpoint mismatch)."""

    prefix = "Configuration error"
    exit_code = 2


class FileSystemError(ActionError):
    """A file or folder the spec names is missing, unreadable or unwritable."""

    prefix = "File system error"
    exit_code = 3


class TrainingDivergedError(ActionError):
    """Loss became NaN or inf: the run stops (TAO reports PASS here; we do not)."""

    prefix = "Training error"
    exit_code = 4


class RunInterruptedError(ActionError):
    """Ctrl-C or SIGTERM: an interrupt checkpoint was written; the message says how to resume."""

    prefix = "Interrupted"
    exit_code = 130


class NotImplementedActionError(ActionError):
    """The action exists in the contract but is not available in this build."""

    prefix = "Not implemented yet"
    exit_code = 5


class DependencyError(ActionError):
    """An optional dependency the action needs is not installed (e.g. tensorrt)."""

    prefix = "Dependency error"
    exit_code = 6


@contextmanager
def concerning(where: str) -> Iterator[None]:
    """Errors raised inside concern ``where`` (a spec key, maybe with its file): the runner's FAILURE
    line reads ``<kind>: <where>: <message>``, and a ValueError raised inside is a configuration error
    (the value at that key is what cannot be used). Errors that already name their key (action errors,
    spec errors) and errors that were already placed keep theirs."""
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, ActionError) and getattr(exc, "concerns", None) is None:
            with suppress(AttributeError):
                exc.concerns = where  # type: ignore[attr-defined]
        raise


EXIT_CONFIG = ConfigurationError.exit_code
EXIT_FILESYSTEM = FileSystemError.exit_code
