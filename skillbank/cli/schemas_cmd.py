"""``skillbank schemas generate|check``: JSON Schemas and spec templates from the spec models."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Generate or check the JSON Schemas and spec templates (made from skillbank.specs).", no_args_is_help=True
)


@app.command()
def generate() -> None:
    """Write schemas/, references/templates/ and every skill's generated schemas and templates."""
    from skillbank.schemagen import generate as run

    written = run()
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"{len(written)} file(s) changed")


@app.command()
def check() -> None:
    """Exit 1 if any generated file is missing or differs from what the models produce now."""
    from skillbank.schemagen import drift

    stale = drift()
    for path in stale:
        typer.echo(f"stale: {path}", err=True)
    if stale:
        typer.echo("run `skillbank schemas generate` and commit the result", err=True)
        raise typer.Exit(1)
    typer.echo("generated files are up to date")
