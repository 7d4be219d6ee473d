"""From a request to the jobs that serve it: plan the first action, then each next action of a chained
request ("train ..., then evaluate it and export it") for the same skill, linked by parent ids: each
job's parent is the nearest earlier job (or the named parent job) whose artefact its action consumes
(:data:`.parents.CONSUMES`), so "train, then evaluate it and export it" gives train <- evaluate and
train <- export, and "export, then build an engine" gives export <- gen_trt_engine.

Each job gets its folder ``<workspace>/jobs/<id>/`` (``spec.yaml``, ``job.log``); its results go to the
request's results folder when it names one, else to that job folder (the runtime writes
``<results_dir>/<action>/``). A child is planned now with everything but its parent's artefact, which
the executor fills in when the parent COMPLETEs (:mod:`.parents`). The child reuses the request's
overrides (model block included, so every job builds the same network); an evaluate child scores on the
request's evaluation data, else on the parent's validation data. Nothing is stored unless every job of
the chain plans.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .parents import CONSUMES
from .store import Job, JobError, Store

#: the dataset split each action reads, and the split of a train parent to fall back on
CHILD_SPLIT = {"evaluate": "test_dataset", "inference": "infer_dataset"}


class SubmitError(JobError):
    """The request cannot become jobs as it stands (one line: the question or what is missing)."""


@dataclass
class PlannedJob:
    job: Job
    plan: Any
    notes: list[str] = field(default_factory=list)


def _gpus_needed(spec: dict[str, Any], action: str) -> int:
    section = spec.get(action) or {}
    if action == "export":
        return 0 if section.get("on_cpu") else 1
    if action == "convert":
        return 0
    if action == "gen_trt_engine":
        return 1
    n = section.get("num_gpus", 1)
    return int(n or 0)


def _results_dir(spec: dict[str, Any], action: str) -> str:
    own = (spec.get(action) or {}).get("results_dir")
    return str(Path(own)) if own else str(Path(spec["results_dir"]) / action)


def _plan(call: Any) -> Any:
    from ..router import PlanQuestion, plan

    try:
        return plan(call)
    except PlanQuestion as exc:
        raise SubmitError(exc.question) from None


def plan_chain(
    store: Store, request: Any, parent_job_id: str | None = None, overrides: dict[str, Any] | None = None
) -> list[PlannedJob]:
    """Plan every job of ``request`` (words, JSON, dict, ToolCall or a Plan) without storing anything."""
    import yaml

    from ..request import ToolCall, parse_request
    from ..router import Plan

    if isinstance(request, Plan):
        call = None
        first_plan: Any = request
        skill, first_action, next_actions = request.skill, request.action, list(request.next_actions)
    else:
        try:
            call = parse_request(request)
        except ValueError as exc:
            raise SubmitError(f"The request does not parse ({exc}); please restate it.") from None
        if overrides:
            call = call.model_copy(update={"spec_overrides": {**call.spec_overrides, **overrides}})
        first_plan = None
        skill, first_action, next_actions = call.skill, call.action, list(call.next_actions)
    parent_job_id = parent_job_id or getattr(call, "parent_job_id", None) or getattr(request, "parent_job_id", None)
    parent = store.get(parent_job_id) if parent_job_id else None
    latest = bool(call.inputs.get("latest")) if call is not None else False

    planned: list[PlannedJob] = []
    for index, action in enumerate([first_action, *next_actions]):
        job_id = store.new_id()
        job_dir = store.workspace / "jobs" / job_id
        if index == 0 and first_plan is not None:
            plan = first_plan
            spec = copy.deepcopy(plan.spec)
            own_results = "results_dir" in plan.inputs
            if not own_results:  # the plan was made without a results folder: the job's folder
                spec["results_dir"] = str(job_dir)
        else:
            own_results = False
            if index == 0:
                this = call
            else:
                base = call or ToolCall(skill=skill, action=action)
                inputs = {k: v for k, v in base.inputs.items() if k in ("eval_dataset", "latest", "results_dir")}
                if action == "inference" and "inference_dataset" in base.inputs:
                    inputs["inference_dataset"] = base.inputs["inference_dataset"]
                this = ToolCall(
                    skill=skill,
                    action=action,
                    automl_policy="off",
                    inputs=inputs,
                    spec_overrides=dict(base.spec_overrides)
                    if call is not None
                    else {"model": first_plan.spec.get("model", {})},
                    request=None,
                )
            if not this.inputs.get("results_dir"):
                this = this.model_copy(update={"inputs": {**this.inputs, "results_dir": str(job_dir)}})
            plan = _plan(this)
            spec = copy.deepcopy(plan.spec)
        missing = [m for m in plan.missing if own_results or not m.startswith("results_dir:")]
        chain = ([(parent.id, parent.action)] if parent else []) + [(p.job.id, p.job.action) for p in planned]
        source = next((c for c in reversed(chain) if (c[1], action) in CONSUMES), None)
        if chain:
            if source is None:
                raise SubmitError(
                    f"{action} cannot take its input from {', '.join(f'{a} job {i}' for i, a in chain)}; "
                    f"parent/child pairs: {', '.join(f'{p} -> {c}' for p, c in CONSUMES)}"
                )
            key = CONSUMES[(source[1], action)][1]
            missing = [m for m in missing if key not in m.split(":", 1)[0]]  # the parent fills it
        split = CHILD_SPLIT.get(action)
        if split and index > 0 and not (spec.get("dataset", {}).get(split) or {}).get("data_sources"):
            first_spec = yaml.safe_load(planned[0].job.spec) or {}
            sources = ((first_spec.get("dataset") or {}).get("val_dataset") or {}).get("data_sources")
            if sources:
                spec.setdefault("dataset", {}).setdefault(split, {})["data_sources"] = sources
                missing = [m for m in missing if split not in m]
        if missing:
            raise SubmitError(f"{skill} {action}: not ready: " + "; ".join(missing))
        job = Job(
            id=job_id,
            skill=plan.skill,
            action=action,
            route=plan.route,
            automl_policy=plan.automl_policy,
            spec=yaml.safe_dump(spec, sort_keys=False),
            results_dir=_results_dir(spec, action),
            parent_job_id=source[0] if source else None,
            job_dir=str(job_dir),
            request=(call.request or "") if call is not None and index == 0 else "",
            gpus_needed=_gpus_needed(spec, action),
            command=["depth_net", action, "-e", str(job_dir / "spec.yaml")],
            options={"latest": latest} if latest else {},
        )
        planned.append(PlannedJob(job, plan, list(plan.notes)))
    return planned


def submit_chain(
    store: Store,
    request: Any,
    parent_job_id: str | None = None,
    overrides: dict[str, Any] | None = None,
    backend: str = "local",
) -> list[Job]:
    """Plan and store every job of ``request`` (PENDING); returns them in chain order."""
    planned = plan_chain(store, request, parent_job_id, overrides)
    jobs: list[Job] = []
    for item in planned:
        job = item.job
        job.backend = backend
        store.add(job)
        Path(job.job_dir).mkdir(parents=True, exist_ok=True)
        jobs.append(job)
    return jobs
