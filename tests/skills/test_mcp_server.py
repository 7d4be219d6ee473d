"""The MCP server: the skill bank's tools over a real stdio session."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

mcp = pytest.importorskip("mcp")


async def _session_calls() -> tuple[list[str], dict, dict, dict]:
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "skillbank.mcp_server"])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = [t.name for t in (await session.list_tools()).tools]
        plan = await session.call_tool("plan_request", {"request": "fine-tune fast stereo on /d/train.txt, no HPO"})
        vague = await session.call_tool("plan_request", {"request": "hello there"})
        valid = await session.call_tool("validate_skills", {})
        return tools, *(json.loads(r.content[0].text) for r in (plan, vague, valid))


def test_stdio_session_lists_tools_and_plans():
    tools, plan, vague, valid = asyncio.run(asyncio.wait_for(_session_calls(), timeout=90))
    assert set(tools) == {"list_skills", "show_skill", "plan_request", "validate_skills"}
    assert plan["skill"] == "depth-net-fast-stereo"
    assert plan["route"] == "direct_train" and plan["automl_policy"] == "off"
    assert plan["policy_source"] == 'request: "no HPO"'
    assert set(vague) == {"question"}
    assert valid == {"ok": True, "problems": []}


def test_show_skill_unknown_name_is_an_error_entry():
    from skillbank.mcp_server import show_skill

    assert "error" in show_skill("no-such-skill")
    assert show_skill("depth-net-mono")["name"] == "depth-net-mono"
