"""Shared fixtures of the data-path tests: the real stereo samples (skipped when absent) and a small
synthetic data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def stereo_data_root() -> Path:
    """``$SKILLBANK_STEREO_DATA`` or ``<repo>/../shared/data/stereo``."""
    return Path(os.environ.get("SKILLBANK_STEREO_DATA", REPO_ROOT.parent / "shared" / "data" / "stereo"))


@pytest.fixture(scope="session")
def stereo_root() -> Path:
    root = stereo_data_root()
    if not root.is_dir():
        pytest.skip(f"real stereo test data not found at {root} (set SKILLBANK_STEREO_DATA)")
    return root


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 96x160 synthetic pairs (max_disparity 32) with synthetic.txt, shared by the session."""
    from skillbank.runtime.data.synthetic import generate_synthetic_stereo

    out = tmp_path_factory.mktemp("synthetic")
    generate_synthetic_stereo(
        out, num_pairs=4, height=96, width=160, max_disparity=32, seed=7, write_right_disparity=True
    )
    return out
