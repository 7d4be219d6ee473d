"""Skill commands (list, show, validate, plan): registered on the skillbank CLI."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the skill commands to ``app``."""
