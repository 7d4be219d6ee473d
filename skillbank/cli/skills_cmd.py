"""Skill commands on the ``skillbank`` CLI: ``list``, ``prompt``, ``show``, ``validate``, ``plan``.

- ``skillbank list [--json]``: every skill (ours, SKILLBANK_SKILLS_PATH, ``--skills-path``).
- ``skillbank prompt [NAME ...]``: the ``<available_skills>`` block for an agent's system prompt.
- ``skillbank show NAME [--json]``: one skill: actions, inputs, AutoML status (runnable, and why not).
- ``skillbank validate [DIR ...]``: the Agent Skills specification's rules plus deep checks; prints
  '<file>[:<line>]: <field>: <problem>' lines, exit 1 on any.
- ``skillbank plan '<request or JSON tool call>' [--json] [--write-spec PATH]``: the plan, before anything
  runs. A request that cannot be planned prints ``{"question": "...", "kind": "..."}`` (the planner's
  question kind, e.g. ``which_model``, ``unsupported``) and exits 2.

No torch is imported by any of these (the registry and planner are the light core).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

SKILLS_PATH_HELP = "Extra skill folder (a skill, or a folder of skills); repeatable. Also: SKILLBANK_SKILLS_PATH."


def _registry(paths: list[Path] | None) -> Any:
    from skillbank.registry import Registry, default_registry

    return Registry.load([str(p) for p in paths]) if paths else default_registry()


def _echo_json(data: Any) -> None:
    from skillbank.skill_listing import to_json

    typer.echo(to_json(data))


def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="One JSON array."),
    skills_path: list[Path] = typer.Option(None, "--skills-path", help=SKILLS_PATH_HELP),
) -> None:
    """List skills: name, kind, actions, AutoML status."""
    from skillbank.skill_listing import list_text, skipped_lines

    reg = _registry(skills_path)
    text = list_text(reg, as_json)
    if text:
        typer.echo(text)
    for line in skipped_lines(reg):
        typer.echo(line, err=True)


def prompt_cmd(
    names: list[str] = typer.Argument(None, help="Skills to include (default: every known skill)."),
    skills_path: list[Path] = typer.Option(None, "--skills-path", help=SKILLS_PATH_HELP),
) -> None:
    """Print the <available_skills> block for an agent's system prompt (the Agent Skills reference
    library's to-prompt format): each skill's name, description and SKILL.md path."""
    from skillbank.skill_listing import available_skills_prompt, skipped_lines

    reg = _registry(skills_path)
    try:
        skills = [reg.get(name) for name in names] if names else reg.list()
    except KeyError as exc:
        typer.echo(f"skillbank prompt: {exc.args[0]}", err=True)
        raise typer.Exit(1) from None
    typer.echo(available_skills_prompt(skills))
    for line in skipped_lines(reg):
        typer.echo(line, err=True)


def show_cmd(
    name: str = typer.Argument(..., help="Skill name, e.g. depth-net-fast-stereo."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
    skills_path: list[Path] = typer.Option(None, "--skills-path", help=SKILLS_PATH_HELP),
) -> None:
    """Show one skill: what it does, its actions and inputs, and whether AutoML is runnable (and why)."""
    reg = _registry(skills_path)
    try:
        skill = reg.get(name)
    except KeyError as exc:
        typer.echo(f"skillbank show: {exc.args[0]}", err=True)
        raise typer.Exit(1) from None
    data = skill.summary() | {
        "metadata": skill.metadata,
        "tags": skill.tags,
        "action_details": skill.info.get("actions") or {},
        "automl": skill.info.get("automl"),
        "spec_shorthand_keys": skill.info.get("spec_shorthand_keys") or {},
        "notes": skill.info.get("notes") or [],
    }
    if as_json:
        _echo_json(data)
        return
    typer.echo(f"{skill.name} ({skill.kind}) - {skill.path}")
    typer.echo(skill.description.strip())
    if skill.network_arch:
        typer.echo(f"network_arch: {skill.network_arch}")
    for action, spec in data["action_details"].items():
        typer.echo(f"  {action}: {spec.get('command')}")
        for key, inp in (spec.get("inputs") or {}).items():
            typer.echo(f"      {key} ({inp.get('type')}{', optional' if inp.get('optional') else ''})")
    typer.echo(f"AutoML: {data['automl_reason']}")
    automl = data["automl"] or {}
    if automl:
        params = ", ".join(automl.get("hyperparameters") or {})
        typer.echo(f"  metric {automl.get('metric')} ({automl.get('direction')}), searches: {params}")
    for note in data["notes"]:
        typer.echo(f"note: {note}")


def validate_cmd(
    dirs: list[Path] = typer.Argument(None, help="Skill folders or folders of skills (default: every known skill)."),
) -> None:
    """Check skill folders: front matter, skill_info schema, templates, schemas, spec keys. Exit 1 on problems."""
    from skillbank.registry import Registry, skill_roots
    from skillbank.skill_checks import check_roots

    if dirs:
        roots = list(dirs)
        problems = check_roots(roots)
    else:
        reg = Registry.load()
        roots = [root for root, _origin in skill_roots()]
        problems = list(reg.problems) + check_roots([r for r in roots if r.exists()])
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} problem(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: every skill in {', '.join(str(r) for r in roots)} is valid")


def plan_cmd(
    request: str = typer.Argument(..., help="Plain words, or a JSON tool call; '-' reads stdin."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    automl_policy: str = typer.Option(None, "--automl-policy", help="Explicit policy: auto or off."),
    write_spec: Path = typer.Option(None, "--write-spec", help="Write the spec YAML here; the command names it."),
    skills_path: list[Path] = typer.Option(None, "--skills-path", help=SKILLS_PATH_HELP),
) -> None:
    """Plan a request: skill, action, route (automl | direct_train | runtime), policy, spec, command."""
    from skillbank.request import parse_request
    from skillbank.router import PlanQuestion, plan

    text = sys.stdin.read() if request == "-" else request
    try:
        call: Any = parse_request(text)
        if automl_policy is not None:
            call = call.model_copy(update={"automl_policy": automl_policy})
    except ValueError:
        call = text  # the planner words the bad_request question (one line naming the field)
    try:
        result = plan(call, _registry(skills_path))
    except PlanQuestion as exc:
        typer.echo(json.dumps({"question": exc.question, "kind": exc.kind}))
        raise typer.Exit(2) from None
    if write_spec is not None:
        import yaml

        from skillbank.atomic import atomic_write

        atomic_write(write_spec, yaml.safe_dump(result.spec, sort_keys=False))
        result = result.with_spec_path(str(write_spec))
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    import yaml

    typer.echo(result.text())
    typer.echo("spec:")
    typer.echo("  " + yaml.safe_dump(result.spec, sort_keys=False).replace("\n", "\n  ").rstrip())


def register(app: typer.Typer) -> None:
    """Add the skill commands to ``app``."""
    app.command("list")(list_cmd)
    app.command("prompt")(prompt_cmd)
    app.command("show")(show_cmd)
    app.command("validate")(validate_cmd)
    app.command("plan")(plan_cmd)
