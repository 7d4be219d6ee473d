"""What ``skillbank list`` and ``skillbank prompt`` print, from a :class:`~skillbank.registry.Registry`.

Kept free of the CLI framework so that :mod:`skillbank.console` can answer ``skillbank list`` without
importing it (startup time), while the typer commands print exactly the same text.

``available_skills_prompt`` writes the ``<available_skills>`` block an agent's system prompt takes, in the
format of the Agent Skills reference library's ``to-prompt`` (``skills-ref``): per skill its name,
description (HTML-escaped) and the absolute path of its SKILL.md, each on its own line.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skillbank.registry import Registry, Skill


def to_json(data: Any) -> str:
    """The CLI's JSON: indented, paths and other objects as strings."""
    return json.dumps(data, indent=2, default=str)


def list_text(registry: Registry, as_json: bool = False) -> str:
    """``skillbank list``'s standard output: one line per skill (name, kind, AutoML, actions) or a JSON array."""
    rows = [s.summary() for s in registry.list()]
    if as_json:
        return to_json(rows)
    lines = []
    for row in rows:
        automl = "runnable" if row["automl_runnable"] else ("not runnable" if row["automl_enabled"] else "off")
        actions = ", ".join(row["actions"]) or "-"
        lines.append(f"{row['name']:<24} {row['kind']:<9} automl {automl:<13} actions: {actions}")
    return "\n".join(lines)


def skipped_lines(registry: Registry) -> list[str]:
    """The standard-error lines for folders the registry could not load."""
    return [f"skipped: {problem}" for problem in registry.problems]


def available_skills_prompt(skills: Iterable[Skill]) -> str:
    """The ``<available_skills>`` XML block for an agent's system prompt (the reference ``to-prompt`` format)."""
    lines = ["<available_skills>"]
    for skill in skills:
        lines += [
            "<skill>",
            "<name>",
            html.escape(skill.name.strip()),
            "</name>",
            "<description>",
            html.escape(skill.description.strip()),
            "</description>",
            "<location>",
            str(skill.path.resolve() / "SKILL.md"),
            "</location>",
            "</skill>",
        ]
    lines.append("</available_skills>")
    return "\n".join(lines)
