"""From a request to the jobs that serve it: the planner's plan of the first action, then one job per
later step of a chained request ("train ..., then evaluate it on /d/val.txt and export it").

Which step feeds which is the planner's (:attr:`skillbank.router.Plan.next_steps`: ``parent_step`` and
``uses``); each later step is planned by :meth:`~skillbank.router.Plan.step_call` with its parent's job id,
so it keeps its own inputs (its data, its overrides) and the planner says which spec key the parent's
file fills (``from_parent``). A job stores that as ``options["from_parent"]``; the executor fills it from
the parent when the parent COMPLETEs (:mod:`.parents`). A step that reads a convert job's annotation
file (inference on an image folder) waits for that job and reads ``<its results>/test.txt``; its model
then comes from its own inputs or the job the request named (``options["from_job"]``).

Each job gets its folder ``<workspace>/jobs/<id>/`` (``spec.yaml``, ``job.log``); its results go to the
request's results folder when it names one, else to that job folder (the runtime writes
``<results_dir>/<action>/``). Every job of the chain reuses the first step's spec overrides (the model
block included, so every job builds the same network) under its own; an evaluate or inference step that
names no data reads the validation data of the train job it descends from. Nothing is stored unless
every job of the chain plans.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillbank.jobs.store import Job, JobError, Store

#: the dataset split each action reads (filled from a train ancestor's val_dataset when the step names none)
CHILD_SPLIT = {"evaluate": "test_dataset", "inference": "infer_dataset"}


class SubmitError(JobError):
    """The request cannot become jobs as it stands (one line: the question or what is missing).
    ``kind`` is the planner's question kind when the planner asked (see ``skillbank.router.QuestionKind``)."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind


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
    from skillbank.router import PlanQuestion, plan

    try:
        return plan(call)
    except PlanQuestion as exc:
        raise SubmitError(exc.question, exc.kind) from None


def _first_plan(request: Any, parent_job_id: str | None, overrides: dict[str, Any] | None) -> tuple[Any, Any]:
    """(plan of the first action, its ToolCall or None for a given Plan), with ``parent_job_id`` and
    ``overrides`` applied."""
    from skillbank.request import parse_request
    from skillbank.router import Plan

    if isinstance(request, Plan):
        if overrides:
            raise SubmitError("overrides: a Plan is already built; plan the request with these overrides instead")
        if parent_job_id and parent_job_id != request.parent_job_id:
            raise SubmitError(
                f"parent_job_id {parent_job_id}: the plan was made with parent job {request.parent_job_id or 'none'}; "
                "plan the request with this parent instead"
            )
        return request, None
    try:
        call = parse_request(request)
    except ValueError as exc:
        _plan(request)  # the planner's one-line bad_request question
        raise SubmitError(f"The request does not parse ({exc}); please restate it.", "bad_request") from None
    update: dict[str, Any] = {}
    if overrides:
        update["spec_overrides"] = {**call.spec_overrides, **overrides}
    if parent_job_id:
        if call.parent_job_id not in (None, parent_job_id):
            raise SubmitError(
                f"parent_job_id {parent_job_id}: the request names parent job {call.parent_job_id}; give one parent"
            )
        update["parent_job_id"] = parent_job_id
    if update:
        call = call.model_copy(update=update)
    return _plan(call), call


def _source(store: Store, planned: list[PlannedJob], job_id: str) -> Job:
    """The job ``job_id``: one of this chain's, else one in the store (JobNotFoundError when none)."""
    return next((p.job for p in planned if p.job.id == job_id), None) or store.get(job_id)


def _check_source(action: str, source: Job, from_parent: dict[str, str]) -> None:
    from skillbank.tool_call import PRODUCES

    for key, kind in from_parent.items():
        if PRODUCES.get(source.action) != kind:
            makers = ", ".join(a for a, k in PRODUCES.items() if k == kind)
            raise SubmitError(
                f"{action} cannot take its input from {source.action} job {source.id}: {key} needs a {kind}, "
                f"which {makers} jobs make"
            )


def _train_val_sources(planned: list[PlannedJob], parent_id: str | None) -> Any:
    """The val_dataset data_sources of the nearest train job up the chain from ``parent_id``."""
    import yaml

    by_id = {p.job.id: p.job for p in planned}
    job = by_id.get(parent_id or "")
    while job is not None:
        if job.action == "train":
            spec = yaml.safe_load(job.spec) or {}
            return ((spec.get("dataset") or {}).get("val_dataset") or {}).get("data_sources")
        job = by_id.get(job.parent_job_id or "")
    return None


def plan_chain(
    store: Store, request: Any, parent_job_id: str | None = None, overrides: dict[str, Any] | None = None
) -> list[PlannedJob]:
    """Plan every job of ``request`` (words, JSON, dict, ToolCall or a Plan) without storing anything.
    ``parent_job_id``: a stored job the first action takes its input from (as if the request named it)."""
    import yaml

    first, call = _first_plan(request, parent_job_id, overrides)
    base_overrides = dict(call.spec_overrides) if call is not None else {"model": first.spec.get("model", {})}
    planned: list[PlannedJob] = []
    for index in range(1 + len(first.next_steps)):
        job_id = store.new_id()
        job_dir = store.workspace / "jobs" / job_id
        step = first.next_steps[index - 1] if index else None
        chain_parent = planned[step.parent_step].job if step is not None and step.parent_step is not None else None
        if step is None:
            plan, inputs = first, dict(call.inputs) if call is not None else {}
        else:
            this = first.step_call(index - 1, chain_parent.id if chain_parent else None)
            update: dict[str, Any] = {"spec_overrides": {**base_overrides, **this.spec_overrides}}
            if step.uses == "annotations" and chain_parent is not None and "inference_dataset" not in this.inputs:
                annotations = str(Path(chain_parent.results_dir) / "test.txt")  # what convert writes
                update["inputs"] = {**this.inputs, "inference_dataset": annotations}
            this = this.model_copy(update=update)
            plan, inputs = _plan(this), dict(this.inputs)
        spec = copy.deepcopy(plan.spec)
        own_results = "results_dir" in plan.inputs
        if not own_results:  # no results folder named: the job's own folder
            spec["results_dir"] = str(job_dir)
        missing = [m for m in plan.missing if own_results or not m.startswith("results_dir:")]
        parent_id = chain_parent.id if chain_parent is not None else plan.parent_job_id
        options: dict[str, Any] = {"from_parent": dict(plan.from_parent)}
        if plan.parent_job_id and plan.parent_job_id != parent_id:
            options["from_job"] = plan.parent_job_id  # the model's job; parent_id only orders (annotations)
        if plan.from_parent:
            _check_source(plan.action, _source(store, planned, plan.parent_job_id), plan.from_parent)
        elif parent_id:
            _source(store, planned, parent_id)  # a named parent must exist
        split = CHILD_SPLIT.get(plan.action)
        if split and step is not None and any(f".{split}." in m.split(":", 1)[0] for m in missing):
            sources = _train_val_sources(planned, parent_id)
            if sources:
                spec.setdefault("dataset", {}).setdefault(split, {})["data_sources"] = copy.deepcopy(sources)
                missing = [m for m in missing if f".{split}." not in m.split(":", 1)[0]]
        if missing:
            raise SubmitError(f"{plan.skill} {plan.action}: not ready: " + "; ".join(missing))
        if inputs.get("latest"):
            options["latest"] = True
        job = Job(
            id=job_id,
            skill=plan.skill,
            action=plan.action,
            route=plan.route,
            automl_policy=plan.automl_policy,
            spec=yaml.safe_dump(spec, sort_keys=False),
            results_dir=_results_dir(spec, plan.action),
            parent_job_id=parent_id,
            job_dir=str(job_dir),
            request=(call.request or "") if call is not None and step is None else "",
            gpus_needed=_gpus_needed(spec, plan.action),
            command=["depth_net", plan.action, "-e", str(job_dir / "spec.yaml")],
            options=options,
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
