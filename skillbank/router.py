"""Plan a request: pick the skill and action, resolve the automl_policy, route, and build the spec.

Routes (docs/runtime.md, "What we rely on from TAO"):

- ``automl``: action train, policy auto, the skill's ``automl_enabled`` true, and both
  ``schemas/train.schema.json`` and ``references/spec_template_train.yaml`` present. The plan carries
  the skill's ``skill_dir`` and its ``automl`` settings for the AutoML runner (see the run-automl skill).
- ``direct_train``: action train otherwise. When AutoML is enabled but the schema or template is
  missing, the message says so: AutoML is enabled but not runnable until schemas are generated.
- ``runtime``: every other action (``depth_net <action> -e <spec>``).

Everything is decided before anything runs; :class:`Plan` prints as text or JSON. A request that cannot
be planned raises :class:`PlanQuestion` with the question to ask back and its ``kind``.

Chains ("train ..., then evaluate it on /data/val and export it"): the plan is the first action;
``next_actions`` names the later ones in order and ``next_steps`` carries each with its own inputs and
the step it consumes (``parent_step``); :meth:`Plan.step_call` turns one into a request to plan once its
parent job exists. A request that names a parent job (``parent_job_id``) does not need a model path:
the job system resolves it from that job (``from_parent`` says which spec key and which kind of file).
What the planner understands in words is described in docs/planner.md.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from skillbank.data_folders import check_inference_folder, missing_annotation_files
from skillbank.policy import PolicyError, resolve_automl_policy
from skillbank.registry import Registry, Skill, default_registry
from skillbank.request import parse_request
from skillbank.request_text import mask_paths
from skillbank.spec_builder import SpecBuildError, build_spec
from skillbank.tool_call import Artifact, NextStep, ToolCall, consumes

Route = Literal["automl", "direct_train", "runtime"]
QuestionKind = Literal[
    "unsupported",
    "which_model",
    "several_models",
    "unknown_skill",
    "workflow_skill",
    "which_action",
    "no_such_action",
    "bad_request",
    "bad_policy",
    "bad_value",
    "needs_annotation",
]
SPEC_PLACEHOLDER = "<spec.yaml>"

#: Tasks people ask for that no skill here does (only read when no model was named).
_UNSUPPORTED = re.compile(
    r"\b(?:segment\w*|detect\w*|classif\w*|translat\w*|caption\w*|transcri\w*|summari[sz]\w*|tracking|track\s+\w+|"
    r"pose\s+estimation|optical\s+flow|ocr|speech|chat\w*|recogni[sz]\w*|super[\s-]?resolution|denois\w*|upscal\w*|"
    r"generat\w*\s+(?:an?\s+|some\s+)?(?:images?|text|videos?|captions?)|object\s+detection|bounding\s+box\w*)\b",
    re.I,
)
_DEPTH_WORDS = re.compile(r"\b(?:depth|disparity|stereo|3d|distance)\b", re.I)
#: Spec key a parent job's file fills, by action and artefact.
_PARENT_KEYS: dict[tuple[str, str], str] = {
    ("evaluate", "checkpoint"): "evaluate.checkpoint",
    ("evaluate", "engine"): "evaluate.trt_engine",
    ("inference", "checkpoint"): "inference.checkpoint",
    ("inference", "engine"): "inference.trt_engine",
    ("export", "checkpoint"): "export.checkpoint",
    ("gen_trt_engine", "onnx"): "gen_trt_engine.onnx_file",
    ("train", "checkpoint"): "train.pretrained_model_path",
}
_PARENT_FILES = {
    "checkpoint": "the newest model_epoch_EEE_step_SSSSS.pth of its train/ folder; dn_model_latest.pth only "
    "when the request says 'latest'",
    "onnx": "the .onnx file of its export/ folder",
    "engine": "the engine file of its gen_trt_engine/ folder",
}
_MODEL_INPUTS = ("checkpoint", "parent_job_dir", "trt_engine", "onnx_file", "pretrained_model", "resume_model")


class PlanQuestion(ValueError):
    """The request cannot be planned as it stands; ``question`` is what to ask the user, ``kind`` which
    sort of question it is (see :data:`QuestionKind`)."""

    def __init__(self, question: str, kind: QuestionKind = "bad_request") -> None:
        self.question = question
        self.kind = kind
        super().__init__(question)


class Plan(BaseModel):
    """What will run, decided before anything runs."""

    skill: str
    action: str
    route: Route
    automl_policy: Literal["auto", "off"]
    policy_source: str = Field(description='explicit | request: "<phrase>" | default')
    message: str
    skill_dir: str
    command: str
    spec: dict[str, Any] = Field(description="The final spec, nested (as written to the spec file).")
    inputs: dict[str, Any] = Field(default_factory=dict, description="Spec keys filled from the request's inputs.")
    ready: bool = Field(description="False while something required is missing (see missing).")
    missing: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    parent_job_id: str | None = Field(
        None, description="The job this action consumes (named in the request); see from_parent."
    )
    from_parent: dict[str, Artifact] = Field(
        default_factory=dict,
        description="Spec keys the job system fills from parent_job_id at submit time, with the kind of file "
        "(checkpoint | onnx | engine); those keys are not reported missing.",
    )
    next_actions: list[str] = Field(
        default_factory=list,
        description="Later steps the request asked for, in order, by action name (one per next_steps entry).",
    )
    next_steps: list[NextStep] = Field(
        default_factory=list,
        description="The later steps as objects: {action, inputs, spec_overrides, parent_step, uses, "
        "parent_job_id}; parent_step 0 is this plan's action, k is next_steps[k-1], None: none of them.",
    )
    automl: dict[str, Any] | None = Field(None, description="The skill's AutoML settings (route automl only).")

    def with_spec_path(self, path: str) -> Plan:
        """The same plan with the spec file's path in the command."""
        return self.model_copy(update={"command": self.command.replace(SPEC_PLACEHOLDER, path)})

    def step_call(self, index: int, parent_job_id: str | None = None) -> ToolCall:
        """The request for ``next_steps[index]`` (0-based), to plan once ``parent_job_id`` (the job of its
        ``parent_step``) exists; without it the step's own inputs must name its model. A step that uses
        annotation files (inference after convert) reads them from the path in its inputs: the given job
        only orders it, and the model comes from its inputs or the job the request named."""
        step = self.next_steps[index]
        if step.uses == "annotations":
            parent_job_id = None
        return ToolCall(
            skill=self.skill,
            action=step.action,
            automl_policy=self.automl_policy if step.action == "train" else None,
            inputs=dict(step.inputs),
            spec_overrides=dict(step.spec_overrides),
            parent_job_id=parent_job_id or step.parent_job_id,
            parent_artifact=step.uses if step.uses != "annotations" else None,
        )

    def text(self) -> str:
        """A short human-readable rendering (the spec follows as YAML in the CLI)."""
        lines = [
            f"skill:          {self.skill}",
            f"action:         {self.action}",
            f"route:          {self.route}",
            f"automl_policy:  {self.automl_policy} ({self.policy_source})",
            f"message:        {self.message}",
            f"command:        {self.command}",
            f"ready:          {'yes' if self.ready else 'no'}",
        ]
        if self.parent_job_id:
            lines.append(f"parent job:     {self.parent_job_id}")
        lines += [f"missing:        {m}" for m in self.missing]
        lines += [f"note:           {n}" for n in self.notes]
        for i, step in enumerate(self.next_steps, start=1):
            after = "this plan" if step.parent_step == 0 else f"step {step.parent_step}" if step.parent_step else None
            own = ", ".join(f"{k}={v}" for k, v in step.inputs.items())
            lines.append(
                f"then ({i}):       {step.action}"
                + (f" (its {step.uses} from {after})" if after else "")
                + (f" [{own}]" if own else "")
            )
        if self.next_steps:
            lines.append("                (plan each after its parent finishes)")
        return "\n".join(lines)


def capabilities(registry: Registry) -> str:
    """What the bank can do, one model skill a line part: 'name (arch): actions'."""
    return "; ".join(
        f"{s.name} ({s.network_arch}): {', '.join(s.actions)}" for s in registry.list() if s.kind == "model"
    )


def _pick_skill(call: ToolCall, registry: Registry) -> Skill:
    name = call.skill
    if name is None:
        words = mask_paths(call.request or "")
        task = _UNSUPPORTED.search(words)
        if task or (call.action is None and not _DEPTH_WORDS.search(words)):
            what = f"'{task.group(0)}'" if task else "this request"
            raise PlanQuestion(
                f"The skill bank cannot do {what}: it plans depth estimation (stereo disparity and monocular "
                f"depth) with depth_net. It can: {capabilities(registry)}. What should it do?",
                "unsupported",
            )
        raise PlanQuestion(
            "Which model? fast stereo (FastFoundationStereo, bp2), stereo (FoundationStereo) or mono "
            "(DepthAnythingV2)? Skills: " + ", ".join(s.name for s in registry.list() if s.kind == "model"),
            "which_model",
        )
    if name.startswith("?"):
        raise PlanQuestion(f"The request names several models ({name[1:]}); which one should run?", "several_models")
    try:
        skill = registry.get(name)
    except KeyError as exc:
        close = difflib.get_close_matches(name, list(registry.skills), n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else "; which skill did you mean?"
        raise PlanQuestion(f"{exc.args[0]}{hint}", "unknown_skill") from None
    if skill.kind != "model":
        models = ", ".join(s.name for s in registry.list() if s.kind == "model")
        raise PlanQuestion(f"{name} is a workflow skill; which model skill should run it ({models})?", "workflow_skill")
    return skill


def _pick_action(call: ToolCall, skill: Skill) -> str:
    if call.action is None:
        raise PlanQuestion(f"What should {skill.name} do: {', '.join(skill.actions)}?", "which_action")
    if call.action not in skill.actions:
        close = difflib.get_close_matches(call.action, skill.actions, n=1, cutoff=0.75)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise PlanQuestion(
            f"{skill.name} has no action {call.action!r}; choose one of {', '.join(skill.actions)}.{hint}",
            "no_such_action",
        )
    for step in call.next_steps:
        if step.action not in skill.actions:
            raise PlanQuestion(
                f"{skill.name} has no action {step.action!r} (a later step); choose from {', '.join(skill.actions)}.",
                "no_such_action",
            )
    return call.action


def route_for(skill: Skill, action: str, policy: str) -> tuple[Route, str]:
    """The route and the message explaining it."""
    if action != "train":
        return "runtime", f"{action} runs directly on the depth_net runtime (only train can go to AutoML)"
    status = skill.automl_status()
    if policy == "off":
        return (
            "direct_train",
            "automl_policy off for this run: direct training (the skill's AutoML settings are unchanged)",
        )
    if not status.enabled:
        return "direct_train", f"direct training: {status.reason}"
    if not status.runnable:
        return "direct_train", f"direct training: {status.reason}"
    return "automl", f"AutoML workflow (run-automl) with skill_dir {skill.path}"


def registry_vocabulary(registry: Registry) -> frozenset[str]:
    """Words of the registry for typo repair: action names and their parts, architecture names, skill name parts."""
    words: set[str] = set()
    for skill in registry.list():
        names = [skill.name, *skill.actions, skill.network_arch or ""]
        for name in names:
            words.add(name.lower().replace("-", "").replace("_", ""))
            words.update(p.lower() for p in re.split(r"[-_]", name) if len(p) >= 4)
    return frozenset(w for w in words if w)


def _parent_inputs(call: ToolCall, action: str) -> tuple[dict[str, Artifact], list[str]]:
    """``from_parent`` and notes for a request that names a parent job."""
    if not call.parent_job_id:
        return {}, []
    given = [k for k in _MODEL_INPUTS if call.inputs.get(k)]
    if given:
        return {}, [f"parent job {call.parent_job_id}: not read, the request gives {', '.join(given)} itself"]
    words = mask_paths(call.request or "")
    engine = call.parent_artifact == "engine" or bool(re.search(r"\b(?:engine|tensorrt|trt)\b", words, re.I))
    kind = call.parent_artifact or consumes(action, engine=engine and action in ("evaluate", "inference"))
    if action == "train":
        kind = "checkpoint"
    key = _PARENT_KEYS.get((action, kind or ""))
    if key is None or kind is None:
        return {}, [f"parent job {call.parent_job_id}: {action} takes no file from a parent job (kept for ordering)"]
    return {key: kind}, [
        f"{key}: from parent job {call.parent_job_id}, resolved when the job is submitted: {_PARENT_FILES[kind]} "
        "(no path needed here)"
    ]


def _complete_steps(call: ToolCall, shift: int = 0) -> list[NextStep]:
    """Later steps with what they inherit: results folder, dataset name, 'latest', and the first step's model
    (or named parent job) when no earlier step makes what they use."""
    inherited = {k: call.inputs[k] for k in ("results_dir", "dataset_name", "latest") if k in call.inputs}
    steps = []
    for step in call.next_steps:
        inputs = inherited | step.inputs
        update: dict[str, Any] = {"inputs": inputs}
        if step.parent_step is None and step.uses in ("checkpoint", "engine", "onnx"):
            inputs.update({k: call.inputs[k] for k in _MODEL_INPUTS if k in call.inputs and k not in step.inputs})
            if call.parent_job_id and not step.parent_job_id:
                update["parent_job_id"] = call.parent_job_id
        elif step.parent_step is not None:
            update["parent_step"] = step.parent_step + shift
        steps.append(step.model_copy(update=update))
    return steps


def _convert_first(call: ToolCall, skill: Skill) -> tuple[ToolCall, list[str], list[NextStep] | None]:
    """Inference on a folder without an annotation file: convert first, or a question (never a made-up file)."""
    folder = call.inputs.get("inference_dataset")
    if call.action != "inference" or not isinstance(folder, str):
        return call, [], None
    check = check_inference_folder(skill, folder, mask_paths(call.request or ""))
    if check.kind == "ask":
        raise PlanQuestion(check.question, "needs_annotation")
    if check.kind == "ok":
        return call, check.notes, None
    results = call.inputs.get("results_dir")
    infer_inputs = {k: v for k, v in call.inputs.items() if k != "inference_dataset"}
    if results:
        infer_inputs["inference_dataset"] = f"{str(results).rstrip('/')}/convert/test.txt"
    infer = NextStep(
        action="inference",
        inputs=infer_inputs,
        spec_overrides={k: v for k, v in call.spec_overrides.items() if not k.startswith("convert.")},
        parent_step=0,
        uses="annotations",
        parent_job_id=call.parent_job_id,
    )
    later = _complete_steps(call, shift=1)
    convert_inputs = {k: call.inputs[k] for k in ("results_dir",) if k in call.inputs}
    converted = call.model_copy(
        update={
            "action": "convert",
            "inputs": convert_inputs,
            "spec_overrides": dict(check.overrides),
            "parent_job_id": None,
        }
    )
    return converted, check.notes, [infer, *later]


def plan(request: str | dict[str, Any] | ToolCall, registry: Registry | None = None) -> Plan:
    """Plan one request (plain words, JSON text, a dict or a :class:`ToolCall`)."""
    registry = registry or default_registry()
    try:
        call = parse_request(request, registry_vocabulary(registry))
    except (ValidationError, ValueError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        detail = f"{'.'.join(map(str, first['loc']))}: {first['msg']}" if first else str(exc)
        raise PlanQuestion(f"The request does not parse ({detail}); please restate it.", "bad_request") from None
    skill = _pick_skill(call, registry)
    _pick_action(call, skill)
    call, notes, steps = _convert_first(call, skill)
    next_steps = steps if steps is not None else _complete_steps(call)
    action = str(call.action)
    try:
        decision = resolve_automl_policy(call.automl_policy, call.request)
    except PolicyError as exc:
        raise PlanQuestion(f"{exc}. Should AutoML run for this request (auto) or not (off)?", "bad_policy") from None
    route, message = route_for(skill, action, decision.policy)
    from_parent, parent_notes = _parent_inputs(call, action)
    try:
        built = build_spec(skill, action, dict(call.inputs), dict(call.spec_overrides))
    except SpecBuildError as exc:
        raise PlanQuestion(f"{exc}. Which value did you mean?", "bad_value") from None
    if any(kind == "engine" for kind in from_parent.values()):
        built.spec.get(action, {})["checkpoint"] = None  # an engine run reads no checkpoint
    parent_keys = set(from_parent) | ({f"{action}.checkpoint"} if "engine" in from_parent.values() else set())
    missing = [m for m in built.missing if m.split(":", 1)[0] not in parent_keys]
    missing += missing_annotation_files(built.inputs)
    built_notes = [n for n in built.notes if n.split(":", 1)[0] not in parent_keys and n not in built.missing]
    command = (skill.info.get("actions", {}).get(action) or {}).get("command", f"depth_net {action} -e {{spec}}")
    command = command.replace("{spec}", SPEC_PLACEHOLDER)
    if route == "automl":  # the study's settings are the spec's automl section (skill defaults where unset)
        command = f"skillbank automl run -e {SPEC_PLACEHOLDER}"
        message += "; skillbank run submits it as a job whose trials are child jobs"
    return Plan(
        skill=skill.name,
        action=action,
        route=route,
        automl_policy=decision.policy,
        policy_source=decision.describe(),
        message=message,
        skill_dir=str(skill.path),
        command=command,
        spec=built.spec,
        inputs=built.inputs,
        ready=not missing,
        missing=missing,
        notes=[f"read '{c.split(' -> ')[0]}' as '{c.split(' -> ')[1]}'" for c in call.corrections]
        + notes
        + parent_notes
        + built_notes,
        parent_job_id=call.parent_job_id,
        from_parent=from_parent,
        next_actions=[s.action for s in next_steps],
        next_steps=next_steps,
        automl=dict(skill.info.get("automl") or {}) if route == "automl" else None,
    )
