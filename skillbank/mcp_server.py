"""An MCP server over the skill bank: the same registry and planner as the CLI and SDK.

Tools: ``list_skills``, ``show_skill``, ``plan_request`` (a request in words or a JSON tool call ->
the plan: skill, action, route, automl_policy, policy_source, message, spec, command; or
``{"question": ...}`` when it cannot be planned) and ``validate_skills``. Planning never runs anything
and never imports torch: the agent runs the plan's command (``depth_net <action> -e spec.yaml``).

    skillbank mcp            # serve over stdio (needs the [mcp] extra: pip install skillbank[mcp])
"""

from __future__ import annotations

import json
from typing import Any

INSTRUCTIONS = (
    "Depth-estimation skill bank (TAO depth_net compatible). Call plan_request with the user's words or a "
    "JSON tool call before running anything; it returns the route (automl, direct_train or runtime), the "
    "automl_policy with the phrase that decided it, and a validated spec. 'no HPO', 'disable AutoML' or "
    "'plain training' turn AutoML off for that run only."
)


def list_skills() -> list[dict[str, Any]]:
    """Every skill: name, kind, network, actions, AutoML status."""
    from .registry import list_skills as registry_list

    return registry_list()


def show_skill(name: str) -> dict[str, Any]:
    """One skill's summary (description, actions, AutoML settings and whether AutoML is runnable)."""
    from .registry import default_registry

    try:
        return default_registry().get(name).summary()
    except KeyError as exc:
        return {"error": str(exc).strip("'\"")}


def plan_request(request: str, automl_policy: str | None = None) -> dict[str, Any]:
    """Plan a request (plain words or a JSON tool call) without running it."""
    from .request import parse_request
    from .router import PlanQuestion, plan

    try:
        call = parse_request(request)
        if automl_policy is not None:
            call = call.model_copy(update={"automl_policy": automl_policy})
        return json.loads(plan(call).model_dump_json())
    except PlanQuestion as exc:
        return {"question": exc.question}
    except ValueError as exc:
        return {"question": f"The request does not parse ({exc}); please restate it."}


def validate_skills(path: str | None = None) -> dict[str, Any]:
    """Validate our skill folders (or the folder at ``path``): every problem with file and key."""
    from pathlib import Path

    from .registry import builtin_root
    from .skill_checks import check_roots

    problems = check_roots([Path(path)] if path else [builtin_root()])
    return {"ok": not problems, "problems": [str(p) for p in problems]}


def build_server() -> Any:
    """The MCP server with the four tools (imports the MCP SDK, 2.x)."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(name="skillbank", instructions=INSTRUCTIONS)
    for tool in (list_skills, show_skill, plan_request, validate_skills):
        server.tool()(tool)
    return server


def main() -> None:
    build_server().run("stdio")


if __name__ == "__main__":
    main()
