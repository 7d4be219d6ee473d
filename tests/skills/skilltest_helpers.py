"""Helpers shared by the skill-bank tests (a uniquely named module: conftest.py names clash across folders)."""

from __future__ import annotations

from pathlib import Path

FFS = "depth-net-fast-stereo"


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (must be present) by ``new`` in a text file."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
