"""Helpers of the job tests (a module name of its own: tests/*/conftest.py files share one name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skillbank.jobs.store import Job

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


def make_job(**fields: Any) -> Job:
    """A job record for store-level tests: a convert job of the fast-stereo skill unless ``fields`` say otherwise."""
    base: dict[str, Any] = dict(
        id="",
        skill="depth-net-fast-stereo",
        action="convert",
        route="runtime",
        automl_policy="off",
        spec="{}",
        results_dir="/tmp/x",
    )
    return Job(**(base | fields))


def empty_postgres_jobs(url: str) -> None:
    """Drop the jobs table of the PostgreSQL database at ``url``, so a test's store starts empty."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS jobs"))
    engine.dispose()
