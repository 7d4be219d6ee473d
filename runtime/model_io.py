"""Build a network from the spec and load a checkpoint into it, with typed, one-line errors.

Shared by every action that runs a trained model (evaluate, inference, export): checkpoint problems
become :class:`~skillbank.runtime.errors.FileSystemError` (missing/unreadable file) or
:class:`~skillbank.runtime.errors.ConfigurationError` (a spec that does not fit the checkpoint, named
by field: "model.gru_hidden: checkpoint has 60, spec has 128").
"""

from __future__ import annotations

import logging
from typing import Any

from .errors import ConfigurationError, FileSystemError

log = logging.getLogger("depth_net")


def build_model(spec: Any) -> Any:
    """The network of ``spec.model`` (random weights)."""
    from .networks.factory import build_network

    try:
        return build_network(spec.model, max_depth=spec.dataset.max_depth)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def load_weights(model: Any, checkpoint: str, *, key: str) -> None:
    """Load ``checkpoint`` (a file of any kind runtime.checkpoints reads, or a results folder) into
    ``model``; ``key`` is the spec key that named it, for the error line."""
    from .checkpoints import CheckpointError, CheckpointMismatchError, CheckpointNotFoundError
    from .checkpoints import load_weights as resolve_read_load

    try:
        report, meta = resolve_read_load(model, checkpoint)
    except CheckpointNotFoundError as exc:
        raise FileSystemError(f"{key}: {exc}") from None
    except CheckpointMismatchError as exc:
        raise ConfigurationError(f"{key}: {exc}") from None
    except CheckpointError as exc:
        raise FileSystemError(f"{key}: {exc}") from None
    log.info("loaded %s (%s); %s", checkpoint, meta.kind, report.drop_summary())


def load_model(spec: Any, checkpoint: str | None, *, key: str) -> Any:
    """Network of ``spec`` with ``checkpoint`` loaded, in eval mode."""
    model = build_model(spec)
    if checkpoint:
        load_weights(model, checkpoint, key=key)
    return model.eval()
