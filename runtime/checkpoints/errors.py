"""Exception classes of the checkpoint package.

Every error is a ``ValueError`` subclass (via :class:`CheckpointError`) so callers that already catch
configuration errors keep working, and every message is one line: what was wrong, what was expected.
"""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint file or its contents cannot be used as asked."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint file at the given path, or none in the given folder."""


class UnsafeCheckpointError(CheckpointError):
    """The pickle asked for a callable that could run code (os.system, eval, subprocess, ...)."""


class CheckpointFormatError(CheckpointError):
    """The file unpickled, but its top-level layout is not one of the supported checkpoint kinds."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's tensors do not fit the network: missing, unexpected or differently shaped."""
