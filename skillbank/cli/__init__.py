"""``skillbank``: the agent-facing command line (no torch imported here).

Commands: ``list``, ``show``, ``validate``, ``plan`` (skills and request planning),
``schemas generate|check`` (JSON Schemas and spec templates generated from the spec models) and
``mcp`` (the same tools as an MCP server over stdio).
"""

from __future__ import annotations

import typer

from . import automl_cmd, schemas_cmd, skills_cmd

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
app.add_typer(automl_cmd.app, name="automl")
skills_cmd.register(app)


@app.command("mcp")
def mcp_cmd() -> None:
    """Serve the skill bank as an MCP server over stdio (tools: list_skills, show_skill, plan_request,
    validate_skills). Needs the [mcp] extra."""
    try:
        from skillbank.mcp_server import main as serve
    except ImportError as exc:  # pragma: no cover - the extra is missing
        typer.echo(f"skillbank mcp: the MCP SDK is not installed (pip install 'skillbank[mcp]'): {exc}", err=True)
        raise typer.Exit(6) from None
    serve()


def main() -> None:
    app()
