"""Build the spec's network and load a checkpoint of any kind into it (via :mod:`runtime.checkpoints`).

Used by evaluate / inference (``<action>.checkpoint``, a file or a train results folder: the newest
epoch/step checkpoint there) and by train (``train.pretrained_model_path``). Errors are left to the
runner, which names the key (and the file) in the FAILURE line (:func:`..errors.concerning`): a missing
checkpoint is a file system error, one that cannot be used a configuration error.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch import nn

from skillbank.runtime.errors import concerning

log = logging.getLogger("depth_net")


def build_model(spec: Any) -> nn.Module:
    """The network of ``spec.model`` (metric mono models get ``dataset.max_depth``)."""
    from skillbank.runtime.networks.factory import build_network

    with concerning("model"):
        return build_network(spec.model, max_depth=spec.dataset.max_depth)


def resolve_weights(path: str, key: str) -> Path:
    """A checkpoint file for ``path`` (a file, or a folder holding epoch/step checkpoints)."""
    from skillbank.runtime.checkpoints import resolve_checkpoint

    with concerning(key):
        return resolve_checkpoint(path, prefer="exact")


def load_weights(model: nn.Module, path: str | Path, key: str) -> str:
    """Load the checkpoint at ``path`` into ``model``; returns a one-line report."""
    from skillbank.runtime.checkpoints import load_checkpoint_file, load_into

    with concerning(key):  # the file's own problems: the messages name the file
        state_dict, meta = load_checkpoint_file(path)
    with concerning(f"{key}: {path}"):  # the network's fit: the messages name the tensors
        report = load_into(model, state_dict)
    where = f" (epoch {meta.epoch}, step {meta.global_step})" if meta.epoch is not None else ""
    text = f"{Path(path).name}{where}: {report}"
    log.info("weights: %s", text)
    return text
