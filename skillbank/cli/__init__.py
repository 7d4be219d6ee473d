"""``skillbank``: the agent-facing command line (no torch imported here).

Commands: ``list``, ``show``, ``validate``, ``plan`` (skills and request planning),
``schemas generate|check`` (JSON Schemas and spec templates generated from the spec models) and
``run`` and ``jobs list|show|logs|cancel`` (requests become jobs: :mod:`.jobs_cmd`) and ``mcp`` (the
same tools as an MCP server).
"""

from __future__ import annotations

import typer

from skillbank.cli import automl_cmd, jobs_cmd, schemas_cmd, skills_cmd

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
jobs_cmd.register(app)


@app.command("mcp")
def mcp_cmd(
    root: list[str] = typer.Option(None, "--root", help="Allowed root folder for client paths (repeatable)."),
    workspace: str = typer.Option(None, "--workspace", help="Jobs workspace (default <first root>/skillbank_jobs)."),
    transport: str = typer.Option("stdio", "--transport", help="stdio or http (streamable HTTP at /mcp)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8765, "--port"),
) -> None:
    """Serve the skill bank and its jobs as an MCP server (tools: list_skills, show_skill, plan_request,
    validate_skills, submit_job, job_status, job_logs, cancel_job, list_jobs). Needs the [mcp] extra."""
    try:
        from skillbank.mcp_server import serve
    except ImportError as exc:  # pragma: no cover - the extra is missing
        typer.echo(f"skillbank mcp: the MCP SDK is not installed (pip install 'skillbank[mcp]'): {exc}", err=True)
        raise typer.Exit(6) from None
    if transport not in ("stdio", "http"):
        typer.echo(f"skillbank mcp: --transport {transport!r}: expected stdio or http", err=True)
        raise typer.Exit(2)
    try:
        serve(root, workspace, transport, host, port)
    except ValueError as exc:
        typer.echo(f"skillbank mcp: {exc}", err=True)
        raise typer.Exit(2) from None


def main() -> None:
    app()
