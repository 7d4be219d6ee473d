"""Build the spec's network and load a checkpoint of any kind into it (via :mod:`runtime.checkpoints`).

Used by evaluate / inference (``<action>.checkpoint``, a file or a train results folder: the newest
epoch/step checkpoint there) and by train (``train.pretrained_model_path``). Checkpoint problems become
one-line :class:`ConfigurationError` / :class:`FileSystemError` messages naming the key and the file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ConfigurationError, FileSystemError

log = logging.getLogger("depth_net")


def build_model(spec: Any) -> nn.Module:
    """The network of ``spec.model`` (metric mono models get ``dataset.max_depth``)."""
    from ..networks.factory import build_network

    try:
        return build_network(spec.model, max_depth=spec.dataset.max_depth)
    except ValueError as exc:
        raise ConfigurationError(f"model: {exc}") from None


def resolve_weights(path: str, key: str) -> Path:
    """A checkpoint file for ``path`` (a file, or a folder holding epoch/step checkpoints)."""
    from ..checkpoints import CheckpointError, CheckpointNotFoundError, resolve_checkpoint

    try:
        return resolve_checkpoint(path, prefer="exact")
    except CheckpointNotFoundError as exc:
        raise FileSystemError(f"{key}: {exc}") from None
    except CheckpointError as exc:
        raise ConfigurationError(f"{key}: {exc}") from None


def load_weights(model: nn.Module, path: str | Path, key: str) -> str:
    """Load the checkpoint at ``path`` into ``model``; returns a one-line report."""
    from ..checkpoints import CheckpointError, CheckpointNotFoundError, load_checkpoint_file, load_into

    try:
        state_dict, meta = load_checkpoint_file(path)
        report = load_into(model, state_dict)
    except CheckpointNotFoundError as exc:
        raise FileSystemError(f"{key}: {exc}") from None
    except CheckpointError as exc:
        raise ConfigurationError(f"{key}: {path}: {exc}") from None
    where = f" (epoch {meta.epoch}, step {meta.global_step})" if meta.epoch is not None else ""
    text = f"{Path(path).name}{where}: {report}"
    log.info("weights: %s", text)
    return text
