"""An MCP server over the skill bank and its jobs: the same registry, planner and job store as the CLI and SDK.

Tools (structured output; every failure is an MCP tool error, ``isError`` true, with one line):

- ``list_skills``, ``show_skill(name)``, ``validate_skills(path)``;
- ``plan_request(request, automl_policy)``: the plan (skill, action, route, automl_policy, policy_source,
  message, spec, command, next_actions, next_steps), or ``{"question": ..., "kind": ...}`` when the planner
  needs an answer first (a normal result, not an error; paths outside the roots are refused as errors);
- ``submit_job(request, parent_job_id)`` -> ``{"jobs": [{id, action, status, parent_job_id, results_dir,
  kpi}, ...]}`` (a chained request gives several jobs linked by parent ids);
- ``job_status(job_id)``, ``job_logs(job_id, tail)``, ``cancel_job(job_id)``, ``list_jobs(status)``.

Resources: each skill's ``SKILL.md`` and ``references/*`` as ``skill://<name>/SKILL.md`` and
``skill://<name>/references/<file>``.

The server is started with allowed roots (``--root``, repeatable; default the current folder). Every path
a client gives (datasets, results folders, checkpoints, ONNX/engine files, ``validate_skills``' path) is
resolved (``..``, symlinks) and refused when it falls outside them. Jobs go to ``--workspace`` (default
``<first root>/skillbank_jobs``), which must lie inside a root.

    skillbank mcp --root /data --root /runs                 # stdio
    skillbank mcp --root /data --transport http --port 8765  # streamable HTTP at /mcp
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

INSTRUCTIONS = (
    "Depth-estimation skill bank (TAO depth_net compatible). Call plan_request with the user's words or a "
    "JSON tool call before running anything; it returns the route (automl, direct_train or runtime), the "
    "automl_policy with the phrase that decided it, and a validated spec. 'no HPO', 'disable AutoML' or "
    "'plain training' turn AutoML off for that run only. submit_job runs a request as jobs ('..., then "
    "evaluate it and export it' gives a chain linked by parent ids); follow them with job_status and "
    "job_logs, stop them with cancel_job. Paths must lie inside the server's roots."
)



class Config:
    """What the running server was started with (set by :func:`build_server`)."""

    roots: list[Path] = []
    workspace: Path | None = None
    client: Any = None


def _error(message: str) -> Exception:
    from mcp.server.mcpserver.exceptions import ToolError

    return ToolError(message)


# --------------------------------------------------------------------------- paths
def resolve_inside_roots(path: str, what: str, roots: list[Path] | None = None) -> Path:
    """``path`` resolved (``..`` and symlinks) if it lies inside a root; else a tool error naming it."""
    roots = Config.roots if roots is None else roots
    raw = Path(os.path.expanduser(str(path)))
    resolved = (raw if raw.is_absolute() else Path.cwd() / raw).resolve()
    for root in roots:
        if resolved == root or root in resolved.parents:
            return resolved
    allowed = ", ".join(str(r) for r in roots) or "none"
    raise _error(f"{what}: {path} resolves to {resolved}, outside the allowed roots ({allowed}); refused")


def _spec_paths(spec: dict[str, Any]) -> list[tuple[str, str]]:
    from skillbank.spec_keys import field_extra
    from skillbank.specs.dotted import flatten

    found = []
    for key, value in flatten(spec).items():
        if key.endswith("data_sources") and isinstance(value, list):
            found += [
                (f"{key}[{i}].data_file", s["data_file"])
                for i, s in enumerate(value)
                if isinstance(s, dict) and isinstance(s.get("data_file"), str)
            ]
        elif isinstance(value, str) and value not in ("", "???") and field_extra(key).get("x-path"):
            found.append((key, value))
    return found


def check_request_paths(call: Any) -> None:
    """Refuse a request whose inputs or spec overrides (what the client gave, the later steps' own
    included) name a path outside the roots. Paths the planner derives come from these or from the
    workspace, which lies inside a root."""
    from skillbank.spec_builder import PATH_INPUTS  # the request inputs that name files or folders

    parts = [("", call), *((f"next_steps[{i}].", step) for i, step in enumerate(call.next_steps))]
    for where, part in parts:
        for name in PATH_INPUTS:
            value = part.inputs.get(name)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and item:
                    resolve_inside_roots(item, f"{where}inputs.{name}")
        for key, value in _spec_paths(dict(part.spec_overrides)):
            resolve_inside_roots(value, where + key)


def _parse(request: str, automl_policy: str | None = None) -> Any:
    from skillbank.request import parse_request

    try:
        call = parse_request(request)
    except ValueError as exc:
        detail = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
        raise _error(f"request: does not parse ({detail}); restate it") from None
    if automl_policy is not None:
        call = call.model_copy(update={"automl_policy": automl_policy})
    return call


# --------------------------------------------------------------------------- skill tools
def list_skills() -> list[dict[str, Any]]:
    """Every skill: name, kind, network, actions, AutoML status."""
    from skillbank.registry import list_skills as registry_list

    return registry_list()


def show_skill(name: str) -> dict[str, Any]:
    """One skill's summary (description, actions, AutoML settings and whether AutoML is runnable)."""
    from skillbank.registry import default_registry

    try:
        return default_registry().get(name).summary()
    except KeyError as exc:
        raise _error(str(exc).strip("'\"")) from None


def plan_request(request: str, automl_policy: str | None = None) -> dict[str, Any]:
    """Plan a request (plain words or a JSON tool call) without running it. Returns the plan, or
    {"question": ..., "kind": ...} when the request needs an answer first (kind: which_model, unsupported,
    which_action, needs_annotation, ...). Paths outside the server's roots are refused (a tool error)."""
    from skillbank.router import PlanQuestion, plan

    call = _parse(request, automl_policy)
    check_request_paths(call)
    try:
        return json.loads(plan(call).model_dump_json())
    except PlanQuestion as exc:
        return {"question": exc.question, "kind": exc.kind}


def validate_skills(path: str | None = None) -> dict[str, Any]:
    """Validate our skill folders (or the folder at ``path``, inside the roots): every problem with file
    and key."""
    from skillbank.registry import builtin_root
    from skillbank.skill_checks import check_roots

    folder = resolve_inside_roots(path, "path") if path else builtin_root()
    if path and not folder.is_dir():
        raise _error(f"path: {path} is not a folder")
    problems = check_roots([folder])
    return {"ok": not problems, "problems": [str(p) for p in problems]}


# --------------------------------------------------------------------------- job tools
def _client() -> Any:
    from skillbank.sdk import Client

    if Config.workspace is None:
        Config.workspace = (Config.roots[0] if Config.roots else Path.cwd()) / "skillbank_jobs"
    if Config.client is None:
        Config.client = Client(Config.workspace)
    return Config.client


def _job(job_id: str) -> Any:
    from skillbank.jobs.store import JobError

    try:
        return _client().status(job_id)
    except JobError as exc:
        raise _error(str(exc)) from None


def _job_detail(job: Any) -> dict[str, Any]:
    return {
        **job.summary(),
        "skill": job.skill,
        "route": job.route,
        "exit_code": job.exit_code,
        "message": job.message,
        "progress": job.progress,
        "artifact": job.artifact,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "command": job.command,
    }


def submit_job(request: str, parent_job_id: str | None = None) -> dict[str, Any]:
    """Plan a request and submit it as jobs (a chain for "..., then ..."). Returns {"jobs": [...]}; follow
    them with job_status."""
    from skillbank.jobs.store import JobError

    call = _parse(request)
    check_request_paths(call)
    try:
        jobs = _client().submit(call, parent_job_id=parent_job_id)
    except JobError as exc:
        raise _error(str(exc)) from None
    return {"jobs": [j.summary() for j in jobs]}


def job_status(job_id: str) -> dict[str, Any]:
    """A job's status (PENDING, RUNNING, COMPLETE, FAILED, CANCELED), exit code, kpi, progress (epoch,
    eta), reason and folders."""
    return _job_detail(_job(job_id))


def job_logs(job_id: str, tail: int = 50) -> dict[str, Any]:
    """The last ``tail`` lines of a job's output."""
    _job(job_id)
    if tail < 0:
        raise _error(f"tail: {tail} is negative; give a number of lines >= 0")
    return {"id": job_id, "log": _client().logs(job_id, tail=tail)}


def cancel_job(job_id: str) -> dict[str, Any]:
    """Cancel a job: PENDING at once; RUNNING gets SIGTERM (train writes an interrupt checkpoint)."""
    job = _job(job_id)
    if job.status in ("COMPLETE", "FAILED", "CANCELED"):
        raise _error(f"job {job_id} already ended ({job.status}); nothing to cancel")
    return _job_detail(_client().cancel(job_id))


def list_jobs(status: str | None = None) -> dict[str, Any]:
    """Jobs of the server's workspace, oldest first (optionally only those in ``status``)."""
    from skillbank.jobs.store import JobError

    try:
        return {"jobs": [j.summary() for j in _client().jobs(status=status.upper() if status else None)]}
    except JobError as exc:
        raise _error(str(exc)) from None


TOOLS = (
    list_skills,
    show_skill,
    plan_request,
    validate_skills,
    submit_job,
    job_status,
    job_logs,
    cancel_job,
    list_jobs,
)


def _add_skill_resources(server: Any) -> None:
    from mcp.server.mcpserver.resources import FileResource

    from skillbank.registry import default_registry

    for skill in default_registry().list():
        folder = Path(skill.path)
        files = [folder / "SKILL.md", *sorted((folder / "references").glob("*"))]
        for path in files:
            if not path.is_file():
                continue
            rel = path.relative_to(folder).as_posix()
            mime = "text/markdown" if path.suffix == ".md" else "text/plain"
            server.add_resource(
                FileResource(
                    uri=f"skill://{skill.name}/{rel}",
                    name=f"{skill.name}/{rel}",
                    path=path.resolve(),
                    mime_type=mime,
                    description=f"{skill.name}: {rel}",
                )
            )


def build_server(roots: list[str | Path] | None = None, workspace: str | Path | None = None) -> Any:
    """The MCP server (imports the MCP SDK, 2.x) with the tools and skill resources above."""
    from mcp.server.mcpserver import MCPServer

    Config.roots = [Path(r).expanduser().resolve() for r in (roots or [Path.cwd()])]
    missing = [str(r) for r in Config.roots if not r.is_dir()]
    if missing:
        raise ValueError(f"--root: not a folder: {missing[0]}")
    Config.workspace = Path(workspace).expanduser().resolve() if workspace else None
    Config.client = None
    ws = Config.workspace
    if ws is not None and not any(ws == r or r in ws.parents for r in Config.roots):
        raise ValueError(f"--workspace: {ws} lies outside the roots ({', '.join(map(str, Config.roots))})")
    server = MCPServer(name="skillbank", instructions=INSTRUCTIONS)
    for tool in TOOLS:
        server.tool()(tool)
    _add_skill_resources(server)
    return server


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m skillbank.mcp_server")
    parser.add_argument("--root", action="append", default=None)
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    serve(args.root, args.workspace, args.transport, args.host, args.port)


def serve(
    roots: list[str] | None, workspace: str | None, transport: str = "stdio", host: str = "127.0.0.1", port: int = 8765
) -> None:
    server = build_server(roots, workspace)
    if transport == "http":
        server.run("streamable-http", host=host, port=port)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
