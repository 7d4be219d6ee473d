"""Fixtures of the AutoML tests: tiny synthetic stereo pairs and a starting checkpoint.

The tiny FastFoundationStereo (``tests/runtime/runtime_helpers.py``) trains an epoch of 2 pairs in a few
CPU seconds; every trial is a real ``depth_net train`` process, so the study tests are marked slow.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from automl_helpers import base_spec  # noqa: E402
from runtime_helpers import write_spec  # noqa: E402


@pytest.fixture(scope="session")
def pairs(tmp_path_factory) -> Path:
    """2 synthetic 64x96 pairs with exact GT and their annotation file."""
    from skillbank.runtime.data.synthetic import generate_synthetic_stereo

    out = tmp_path_factory.mktemp("automl_pairs")
    return generate_synthetic_stereo(out, num_pairs=2, height=64, width=96, max_disparity=32, seed=5)


@pytest.fixture(scope="session")
def start_weights(tmp_path_factory, pairs) -> Path:
    """A checkpoint of the tiny FFS after one epoch: the weights every study starts from."""
    from skillbank.runtime.runner import run_action

    folder = tmp_path_factory.mktemp("automl_start")
    spec = base_spec(folder / "results", pairs)
    spec.pop("automl")
    assert run_action("train", str(write_spec(folder / "spec.yaml", spec)), []) == 0
    return sorted((folder / "results" / "train").glob("model_epoch_*.pth"))[-1]
