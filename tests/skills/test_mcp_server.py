"""The MCP server over a real stdio session, driven by the SDK's client: skill tools, job tools, resources,
tool errors (isError) and the allowed roots."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

mcp = pytest.importorskip("mcp")
pytest.importorskip("sqlalchemy")

CONVERT = {
    "skill": "depth-net-fast-stereo",
    "action": "convert",
    "spec_overrides": {
        "convert.mode": "synthetic",
        "convert.num_pairs": 2,
        "convert.height": 32,
        "convert.width": 64,
        "convert.max_disparity": 8,
        "convert.data_root": None,
    },
}


async def _session(roots: list[Path], body: Any) -> Any:
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    args = ["-m", "skillbank.mcp_server"] + [a for r in roots for a in ("--root", str(r))]
    params = StdioServerParameters(command=sys.executable, args=args)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return await body(session)


def _run(roots: list[Path], body: Any, timeout: float = 180) -> Any:
    return asyncio.run(asyncio.wait_for(_session(roots, body), timeout=timeout))


def _data(result: Any) -> Any:
    assert not result.is_error, result.content[0].text
    return result.structured_content


def test_tools_plan_submit_and_poll_to_complete(tmp_path: Path) -> None:
    async def body(session: Any) -> dict:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        plan = _data(
            await session.call_tool(
                "plan_request", {"request": f"fine-tune fast stereo on {tmp_path}/train.txt, no HPO"}
            )
        )
        vague = _data(await session.call_tool("plan_request", {"request": "hello there"}))
        submitted = _data(await session.call_tool("submit_job", {"request": json.dumps(CONVERT)}))
        job_id = submitted["jobs"][0]["id"]
        deadline = time.monotonic() + 150
        while (status := _data(await session.call_tool("job_status", {"job_id": job_id})))["status"] not in (
            "COMPLETE",
            "FAILED",
            "CANCELED",
        ):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.5)
        logs = _data(await session.call_tool("job_logs", {"job_id": job_id, "tail": 5}))
        listed = _data(await session.call_tool("list_jobs", {}))
        resources = [str(r.uri) for r in (await session.list_resources()).resources]
        skill_md = await session.read_resource("skill://depth-net-fast-stereo/SKILL.md")
        return dict(
            tools=tools,
            plan=plan,
            vague=vague,
            submitted=submitted,
            status=status,
            logs=logs,
            listed=listed,
            resources=resources,
            skill_md=skill_md.contents[0].text,
        )

    out = _run([tmp_path], body)
    assert {
        "list_skills",
        "show_skill",
        "plan_request",
        "validate_skills",
        "submit_job",
        "job_status",
        "job_logs",
        "cancel_job",
        "list_jobs",
    } <= set(out["tools"])
    assert out["tools"]["submit_job"].output_schema is not None
    assert out["plan"]["route"] == "direct_train" and out["plan"]["policy_source"] == 'request: "no HPO"'
    assert set(out["vague"]) == {"question"}
    job = out["submitted"]["jobs"][0]
    assert set(job) == {"id", "action", "status", "parent_job_id", "results_dir", "kpi"}
    assert out["status"]["status"] == "COMPLETE" and out["status"]["exit_code"] == 0
    assert Path(out["status"]["results_dir"]).is_relative_to(tmp_path)
    assert "SUCCESS" in out["logs"]["log"]
    assert [j["id"] for j in out["listed"]["jobs"]] == [job["id"]]
    assert "skill://depth-net-fast-stereo/references/skill_info.yaml" in out["resources"]
    assert out["skill_md"].startswith("---")


def test_errors_are_tool_errors_and_paths_stay_inside_the_roots(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)

    async def body(session: Any) -> dict:
        calls = {
            "dotdot": ("plan_request", {"request": f"fine-tune fast stereo on {root}/../outside/train.txt, no HPO"}),
            "absolute": ("submit_job", {"request": "fine-tune fast stereo on /etc/train.txt, no HPO"}),
            "symlink": (
                "plan_request",
                {"request": f"evaluate fast stereo on {root}/link/test.txt with checkpoint {root}/m.pth"},
            ),
            "results": ("plan_request", {"request": json.dumps(CONVERT | {"inputs": {"results_dir": "/tmp/x"}})}),
            "validate": ("validate_skills", {"path": str(outside)}),
            "unknown_skill": ("show_skill", {"name": "nope"}),
            "unknown_job": ("job_status", {"job_id": "zzzzzz"}),
            "bad_json": ("plan_request", {"request": "{not json"}),
            "question_on_submit": ("submit_job", {"request": "hello there"}),
            "bad_args": ("job_logs", {"job_id": 3, "tail": "x"}),
        }
        out = {}
        for name, (tool, args) in calls.items():
            out[name] = await session.call_tool(tool, args)
        return out

    out = _run([root], body)
    for name, result in out.items():
        assert result.is_error, f"{name}: {result.content[0].text}"
    text = {k: v.content[0].text for k, v in out.items()}
    assert "outside the allowed roots" in text["dotdot"] and str(outside) in text["dotdot"]
    assert "/etc/train.txt" in text["absolute"] and "refused" in text["absolute"]
    assert f"resolves to {outside}/test.txt" in text["symlink"]
    assert "outside the allowed roots" in text["results"] and "outside the allowed roots" in text["validate"]
    assert "nope" in text["unknown_skill"] and "zzzzzz" in text["unknown_job"]
    assert not list((root / "skillbank_jobs" / "jobs").glob("*")) if (root / "skillbank_jobs").exists() else True


def test_streamable_http_transport(tmp_path: Path) -> None:
    import socket
    import subprocess

    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skillbank.mcp_server",
            "--root",
            str(tmp_path),
            "--transport",
            "http",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    async def body() -> tuple[list[str], Any]:
        for _ in range(100):  # until the server listens
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                await asyncio.sleep(0.2)
        async with (
            streamable_http_client(f"http://127.0.0.1:{port}/mcp") as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
            tools = [t.name for t in (await session.list_tools()).tools]
            return tools, await session.call_tool("show_skill", {"name": "nope"})

    try:
        tools, unknown = asyncio.run(asyncio.wait_for(body(), timeout=90))
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "submit_job" in tools and unknown.is_error and "nope" in unknown.content[0].text
