"""Plan a request: pick the skill and action, resolve the automl_policy, route, and build the spec.

Routes (DEPTH_NET_FACTS.md section 9):

- ``automl``: action train, policy auto, the skill's ``automl_enabled`` true, and both
  ``schemas/train.schema.json`` and ``references/spec_template_train.yaml`` present. The plan carries
  the skill's ``skill_dir`` and its ``automl`` settings for the AutoML runner (see the run-automl skill).
- ``direct_train``: action train otherwise. When AutoML is enabled but the schema or template is
  missing, the message says so: AutoML is enabled but not runnable until schemas are generated.
- ``runtime``: every other action (``depth_net <action> -e <spec>``).

Everything is decided before anything runs; :class:`Plan` prints as text or JSON. A request that cannot
be planned raises :class:`PlanQuestion` with the question to ask back.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from .policy import PolicyError, resolve_automl_policy
from .registry import Registry, Skill, default_registry
from .request import ToolCall, parse_request
from .spec_builder import SpecBuildError, build_spec

Route = Literal["automl", "direct_train", "runtime"]
SPEC_PLACEHOLDER = "<spec.yaml>"


class PlanQuestion(ValueError):
    """The request cannot be planned as it stands; ``question`` is what to ask the user."""

    def __init__(self, question: str) -> None:
        self.question = question
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
    next_actions: list[str] = Field(default_factory=list, description="Later steps the request asked for.")
    automl: dict[str, Any] | None = Field(None, description="The skill's AutoML settings (route automl only).")

    def with_spec_path(self, path: str) -> Plan:
        """The same plan with the spec file's path in the command."""
        return self.model_copy(update={"command": self.command.replace(SPEC_PLACEHOLDER, path)})

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
        lines += [f"missing:        {m}" for m in self.missing]
        lines += [f"note:           {n}" for n in self.notes]
        if self.next_actions:
            lines.append(f"then:           {', '.join(self.next_actions)} (plan each after this one finishes)")
        return "\n".join(lines)


def _pick_skill(call: ToolCall, registry: Registry) -> Skill:
    name = call.skill
    if name is None:
        raise PlanQuestion(
            "Which model? fast stereo (FastFoundationStereo, bp2), stereo (FoundationStereo) or mono "
            "(DepthAnythingV2)? Skills: " + ", ".join(s.name for s in registry.list() if s.kind == "model")
        )
    if name.startswith("?"):
        raise PlanQuestion(f"The request names several models ({name[1:]}); which one should run?")
    try:
        skill = registry.get(name)
    except KeyError as exc:
        raise PlanQuestion(f"{exc.args[0]}; which skill did you mean?") from None
    if skill.kind != "model":
        models = ", ".join(s.name for s in registry.list() if s.kind == "model")
        raise PlanQuestion(f"{name} is a workflow skill; which model skill should run it ({models})?")
    return skill


def _pick_action(call: ToolCall, skill: Skill) -> str:
    if call.action is None:
        raise PlanQuestion(f"What should {skill.name} do: {', '.join(skill.actions)}?")
    if call.action not in skill.actions:
        raise PlanQuestion(f"{skill.name} has no action {call.action!r}; choose one of {', '.join(skill.actions)}.")
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


def plan(request: str | dict[str, Any] | ToolCall, registry: Registry | None = None) -> Plan:
    """Plan one request (plain words, JSON text, a dict or a :class:`ToolCall`)."""
    registry = registry or default_registry()
    try:
        call = parse_request(request)
    except (ValidationError, ValueError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        detail = f"{'.'.join(map(str, first['loc']))}: {first['msg']}" if first else str(exc)
        raise PlanQuestion(f"The request does not parse ({detail}); please restate it.") from None
    skill = _pick_skill(call, registry)
    action = _pick_action(call, skill)
    try:
        decision = resolve_automl_policy(call.automl_policy, call.request)
    except PolicyError as exc:
        raise PlanQuestion(f"{exc}. Should AutoML run for this request (auto) or not (off)?") from None
    route, message = route_for(skill, action, decision.policy)
    try:
        built = build_spec(skill, action, dict(call.inputs), dict(call.spec_overrides))
    except SpecBuildError as exc:
        raise PlanQuestion(f"{exc}. Which value did you mean?") from None
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
        ready=not built.missing,
        missing=built.missing,
        notes=[n for n in built.notes if not any(n == m for m in built.missing)],
        next_actions=call.next_actions,
        automl=dict(skill.info.get("automl") or {}) if route == "automl" else None,
    )
