"""``skillbank``: the agent-facing command line (no torch imported here).

Commands: ``list``, ``show``, ``validate``, ``plan`` (skills and request planning) and
``schemas generate|check`` (JSON Schemas and spec templates generated from the spec models).
"""

from __future__ import annotations

import typer

from . import schemas_cmd, skills_cmd

app = typer.Typer(
    name="skillbank",
    help="Open skill bank for depth estimation: list skills, plan requests, validate skill folders, "
    "generate schemas and spec templates.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(schemas_cmd.app, name="schemas")
skills_cmd.register(app)


def main() -> None:
    app()
