"""Helpers of the runtime action tests: a tiny FastFoundationStereo spec, spec files, status, the CLI.

The tiny FFS keeps the (fixed-width) EdgeNeXt features and shrinks everything the spec's 15 width
fields control, with max_disparity 64 (16 cost-volume levels) and 2-3 refinement iterations, so a
training step on a 64x96 crop takes a fraction of a second on a laptop CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

TINY_WIDTHS: dict[str, Any] = {
    "motion_encoder_widths": [8, 8, 4, 4],
    "motion_encoder_final": 8,
    "gru_hidden": 8,
    "gru_gating_conv_widths": [8, 8],
    "disp_head_input_dim": 8,
    "disp_head_intermediate": 8,
    "disp_head_pwconv1_widths": [8, 8],
    "mask_widths": [8, 8],
    "stem_2_widths": [8, 8],
    "spx_2_gru_widths": [8, 8, 8, 8],
    "spx_gru_out": 9,
    "classifier_mid": 4,
    "cnet_conv04_widths": [8, 8],
    "cam_mid_channels": 2,
    "cost_agg_conv_patch_padding": [0, 0, 0],
}

REAL_STEREO = Path(os.environ.get("DEPTH_NET_TEST_DATA", "/work/shared/data/stereo"))


def tiny_ffs_model() -> dict[str, Any]:
    return {"model_type": "FastFoundationStereo", "max_disparity": 64, "volume_dim": 8, "train_iters": 3,
            "valid_iters": 3, **TINY_WIDTHS}


def split(annotation: Path, *, crop: tuple[int, int] = (64, 96), batch: int = 1, train: bool = True,
          dataset_name: str = "GenericDataset") -> dict[str, Any]:
    aug: dict[str, Any] = {"crop_size": list(crop)}
    if train:  # gentle augmentation: the tests check that the loss falls within a couple of epochs
        aug.update(min_scale=0.0, max_scale=0.0, spatial_aug_prob=0.0, eraser_aug_prob=0.0, color_aug_prob=0.0,
                   yjitter_prob=0.0, hshift_prob=0.0)
    return {"data_sources": [{"dataset_name": dataset_name, "data_file": str(annotation)}], "batch_size": batch,
            "workers": 0, "pin_memory": False, "augmentation": aug}


def write_spec(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def read_status(results_dir: Path) -> list[dict[str, Any]]:
    path = Path(results_dir) / "status.json"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_cli(action: str, spec: Path, *overrides: str, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``depth_net <action> -e spec overrides`` in a subprocess (the real entry point)."""
    cmd = [sys.executable, "-m", "skillbank.runtime.cli", action, "-e", str(spec), *overrides]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)
