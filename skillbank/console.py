"""The ``skillbank`` console script.

``skillbank list`` is what an agent runs first and most often, so it is answered here from the registry
without importing the CLI framework (typer builds pydantic adapters for every parameter, which costs
more than listing itself). Only the plain forms are answered here: ``list`` with ``--json`` and
``--skills-path DIR`` (repeatable); anything else, ``--help`` included, goes to the typer app
(:mod:`skillbank.cli`), whose ``list`` command prints the same text (:mod:`skillbank.skill_listing`).
"""

from __future__ import annotations

import sys


def _plain_list_args(args: list[str]) -> tuple[bool, list[str]] | None:
    """(as_json, skills_path) when ``args`` is a plain ``list`` call, else None."""
    if not args or args[0] != "list":
        return None
    as_json, paths = False, []
    rest = iter(args[1:])
    for arg in rest:
        if arg == "--json":
            as_json = True
        elif arg == "--skills-path":
            value = next(rest, None)
            if value is None or value.startswith("-"):
                return None
            paths.append(value)
        elif arg.startswith("--skills-path="):
            paths.append(arg.split("=", 1)[1])
        else:
            return None
    return as_json, paths


def fast_list(args: list[str]) -> bool:
    """Answer a plain ``skillbank list`` call; False when ``args`` is something else."""
    parsed = _plain_list_args(args)
    if parsed is None:
        return False
    from pathlib import Path

    from skillbank.registry import Registry, default_registry
    from skillbank.skill_listing import list_text, skipped_lines

    as_json, paths = parsed
    registry = Registry.load([str(Path(p)) for p in paths]) if paths else default_registry()
    text = list_text(registry, as_json)
    if text:
        print(text)
    for line in skipped_lines(registry):
        print(line, file=sys.stderr)
    return True


def main() -> None:
    if fast_list(sys.argv[1:]):
        return
    from skillbank.cli import main as cli_main

    cli_main()
