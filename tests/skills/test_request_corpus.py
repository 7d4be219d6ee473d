"""The request corpus (tests/skills/data/request_corpus.yaml): each request gives its expected plan or question."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from skillbank.registry import Registry
from skillbank.router import Plan, PlanQuestion, plan

CORPUS = Path(__file__).parent / "data" / "request_corpus.yaml"
SKILLS = {"ffs": "depth-net-fast-stereo", "fs": "depth-net-stereo", "mono": "depth-net-mono"}
KEYS = {
    "r", "skill", "action", "route", "policy", "source", "parent", "next", "steps", "spec", "from_parent", "ready",
    "fixes", "q", "q_has", "notes_has",
}  # fmt: skip


def _load() -> list[dict[str, Any]]:
    entries = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    assert isinstance(entries, list)
    return entries


ENTRIES = _load()


def _id(entry: dict[str, Any]) -> str:
    r = entry["r"]
    return f"{ENTRIES.index(entry):03d}:" + (r if isinstance(r, str) else "json:" + str(r))[:60]


def _at(spec: dict[str, Any], dotted: str) -> Any:
    node: Any = spec
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"spec has no {dotted}"
        node = node[part]
    return node


def _check_plan(p: Plan, e: dict[str, Any]) -> None:
    if "skill" in e:
        assert p.skill == SKILLS.get(e["skill"], e["skill"])
    for key, attr in (("action", "action"), ("route", "route"), ("policy", "automl_policy"), ("ready", "ready")):
        if key in e:
            assert getattr(p, attr) == e[key], f"{attr}: {getattr(p, attr)!r} (missing: {p.missing})"
    if "source" in e:
        assert e["source"] in p.policy_source, p.policy_source
    if "parent" in e:
        assert p.parent_job_id == (None if e["parent"] is None else str(e["parent"]))
    if "from_parent" in e:
        assert p.from_parent == e["from_parent"]
    if "next" in e:
        assert p.next_actions == e["next"]
        assert [s.action for s in p.next_steps] == e["next"]
    for i, want in enumerate(e.get("steps", [])):
        got = p.next_steps[i]
        for key, value in want.items():
            if key == "inputs":
                assert {k: got.inputs.get(k) for k in value} == value, got.inputs
            else:
                assert getattr(got, key) == value, f"next_steps[{i}].{key}: {getattr(got, key)!r}"
    for key, value in (e.get("spec") or {}).items():
        assert _at(p.spec, key) == value, f"spec {key}"
    if "fixes" in e:
        fixes = [n for n in p.notes if n.startswith("read '")]
        assert [f"read '{a}' as '{b}'" for a, b in (f.split(" -> ") for f in e["fixes"])] == fixes
    if "notes_has" in e:
        assert any(e["notes_has"] in n for n in p.notes), p.notes


def test_corpus_is_large_well_formed_and_covers_every_category() -> None:
    assert len(ENTRIES) >= 200
    seen = [str(e["r"]) for e in ENTRIES]
    assert len(set(seen)) == len(seen), "duplicate requests"
    for e in ENTRIES:
        assert set(e) <= KEYS, f"{_id(e)}: unknown keys {set(e) - KEYS}"
        assert ("q" in e) != ("action" in e), f"{_id(e)}: give either a question kind or an action"
    text = CORPUS.read_text(encoding="utf-8")
    kinds = {e["q"] for e in ENTRIES if "q" in e}
    assert {"unsupported", "needs_annotation", "which_model", "which_action", "several_models"} <= kinds
    assert sum(1 for e in ENTRIES if e.get("policy") == "off") >= 30
    assert sum(1 for e in ENTRIES if e.get("fixes")) >= 10 and sum(1 for e in ENTRIES if e.get("fixes") == []) >= 10
    assert sum(1 for e in ENTRIES if e.get("parent")) >= 15
    assert sum(1 for e in ENTRIES if e.get("next")) >= 15
    assert sum(1 for e in ENTRIES if not isinstance(e["r"], str) or e["r"].lstrip().startswith("{")) >= 20
    assert "HPO / AutoML named as the task" in text and "a folder of images" in text


@pytest.mark.parametrize("entry", ENTRIES, ids=[_id(e) for e in ENTRIES])
def test_corpus_request(entry: dict[str, Any], registry: Registry) -> None:
    request = entry["r"]
    if "q" in entry:
        with pytest.raises(PlanQuestion) as info:
            plan(request, registry)
        assert info.value.kind == entry["q"], info.value.question
        assert "\n" not in info.value.question
        if "q_has" in entry:
            assert entry["q_has"] in info.value.question
        return
    try:
        p = plan(request, registry)
    except PlanQuestion as exc:
        pytest.fail(f"asked ({exc.kind}): {exc.question}")
    _check_plan(p, entry)
