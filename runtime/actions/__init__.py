"""depth_net actions, one module each. Every module exposes ``run(ctx: ActionContext) -> ActionResult``.

The table below is the single list of actions: the CLI, ``--help`` and the status contract read it.
Modules are imported only when their action runs, so ``depth_net --help`` never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

ACTION_HELP: dict[str, str] = {
    "train": "Train or fine-tune a network (Lightning; CPU, one GPU or many).",
    "evaluate": "Score a checkpoint on dataset.test_dataset (epe, bp1/2/3, d1, rmse).",
    "inference": "Write colourised disparity/depth PNGs (and raw PFM) for dataset.infer_dataset.",
    "export": "Export a checkpoint to an fp32 ONNX graph or an AOTInductor .pt2 (drift-checked against PyTorch).",
    "gen_trt_engine": "Build a TensorRT engine from the ONNX graph, drift-checked (needs the tensorrt package).",
    "convert": "Write annotation files from a folder tree, or render a synthetic stereo set with exact GT.",
}

#: Spec sections (dotted prefixes) each action reads, for ``depth_net <action> --help``.
ACTION_SECTIONS: dict[str, list[str]] = {
    "train": ["results_dir", "model", "dataset.train_dataset", "dataset.val_dataset", "dataset", "train"],
    "evaluate": ["results_dir", "model", "dataset.test_dataset", "dataset", "evaluate"],
    "inference": ["results_dir", "model", "dataset.infer_dataset", "dataset", "inference"],
    "export": ["results_dir", "model", "export"],
    "gen_trt_engine": ["results_dir", "gen_trt_engine"],
    "convert": ["results_dir", "convert"],
}


def load_action(name: str) -> Callable:
    """The ``run`` function of an action (imports its module now)."""
    if name not in ACTION_HELP:
        raise KeyError(name)
    module = importlib.import_module(f"{__name__}.{name}")
    return module.run
