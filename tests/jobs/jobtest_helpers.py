"""Helpers of the job tests (a module name of its own: tests/*/conftest.py files share one name)."""

from __future__ import annotations

from pathlib import Path

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


def convert_request(pairs: int = 2) -> dict:
    """A JSON tool call for a quick real job: render ``pairs`` synthetic pairs."""
    return {
        "skill": "depth-net-fast-stereo",
        "action": "convert",
        "spec_overrides": {
            "convert.mode": "synthetic",
            "convert.num_pairs": pairs,
            "convert.height": 32,
            "convert.width": 64,
            "convert.max_disparity": 8,
            "convert.data_root": None,
        },
    }
