"""A request as a typed tool call: what an agent sends as JSON, and what the word reader produces.

JSON tool call::

    {"skill": "depth-net-fast-stereo", "action": "train", "automl_policy": "off",
     "spec_overrides": {"learning_rate": 1e-5, "train": {"num_epochs": 3}},
     "inputs": {"train_datasets": ["/data/kitti"], "eval_dataset": "/data/kitti_val", "results_dir": "/runs/x"},
     "parent_job_id": null,
     "next_actions": [{"action": "evaluate", "inputs": {"eval_dataset": "/data/val.txt"}}, "export"]}

Later steps of a chained request are :class:`NextStep` objects; :func:`link_steps` says which earlier step
makes what each one uses (:data:`PRODUCES`, :func:`consumes`).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: A job id as a request may name it (short, human-typable).
JOB_ID_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?")

#: Input names a request may give (JSON ``inputs``), with accepted aliases.
INPUT_ALIASES: dict[str, str] = {
    "train_datasets": "train_datasets",
    "train_dataset": "train_datasets",
    "eval_dataset": "eval_dataset",
    "val_dataset": "eval_dataset",
    "test_dataset": "eval_dataset",
    "inference_dataset": "inference_dataset",
    "infer_dataset": "inference_dataset",
    "results_dir": "results_dir",
    "output_dir": "results_dir",
    "checkpoint": "checkpoint",
    "parent_model": "checkpoint",
    "parent_job_dir": "parent_job_dir",
    "parent_model_folder": "parent_job_dir",
    "parent_job": "parent_job_dir",
    "pretrained_model": "pretrained_model",
    "bp2_ckpt": "pretrained_model",
    "resume_model": "resume_model",
    "onnx_file": "onnx_file",
    "trt_engine": "trt_engine",
    "engine": "trt_engine",
    "dataset_name": "dataset_name",
    "latest": "latest",
}


def canonical_inputs(value: dict[str, Any], where: str = "inputs") -> dict[str, Any]:
    """Input names with aliases resolved (``train_datasets`` always a list); unknown names raise."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = INPUT_ALIASES.get(key)
        if name is None:
            known = ", ".join(sorted(set(INPUT_ALIASES.values())))
            raise ValueError(f"{where}.{key}: unknown input; use one of {known}")
        if name == "train_datasets" and isinstance(item, str):
            item = [item]
        out[name] = item
    return out


#: What each action leaves for a later step, and what it takes from an earlier one.
PRODUCES = {"train": "checkpoint", "export": "onnx", "gen_trt_engine": "engine", "convert": "annotations"}
Artifact = Literal["checkpoint", "onnx", "engine", "annotations"]


def consumes(action: str, engine: bool = False) -> Artifact | None:
    """The artefact ``action`` reads from a parent step/job (``engine``: an engine evaluate/inference)."""
    if action in ("evaluate", "inference"):
        return "engine" if engine else "checkpoint"
    return {"export": "checkpoint", "gen_trt_engine": "onnx", "train": "annotations"}.get(action)


class NextStep(BaseModel):
    """A later step of a chained request ("train ..., then evaluate it on /data/val and export it")."""

    model_config = ConfigDict(extra="forbid")

    action: str
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="Inputs of this step (ToolCall input names): what its own words named, plus what it "
        "inherits from the request (results_dir, dataset_name, latest; the first step's model when no "
        "earlier step makes one).",
    )
    spec_overrides: dict[str, Any] = Field(default_factory=dict, description="Overrides its own words gave.")
    parent_step: int | None = Field(
        None,
        description="Index of the step whose output this step consumes: 0 = the plan's own action, k = "
        "next_steps[k-1]; None when no earlier step makes what it needs (it then uses its own inputs, or "
        "parent_job_id). A job system starts this step when that one COMPLETEs and gives it that job's id "
        "as parent_job_id.",
    )
    uses: Artifact | None = Field(
        None, description="What it takes from its parent: checkpoint | onnx | engine | annotations."
    )
    parent_job_id: str | None = Field(None, description="A job the request named, when parent_step is None.")

    @field_validator("inputs")
    @classmethod
    def _canonical_inputs(cls, value: dict[str, Any]) -> dict[str, Any]:
        return canonical_inputs(value, "next_steps.inputs")


def link_steps(first: str, steps: list[NextStep]) -> None:
    """Fill ``parent_step``/``uses`` of steps that do not set them: the newest earlier step that makes
    what each consumes (evaluate/inference/export a checkpoint, gen_trt_engine an ONNX, evaluate/inference
    after an engine build that engine, train annotation files)."""
    chain = [first, *(s.action for s in steps)]
    for k, step in enumerate(steps, start=1):
        if "uses" not in step.model_fields_set:
            step.uses = consumes(step.action, engine="gen_trt_engine" in chain[:k])
        if "parent_step" not in step.model_fields_set:
            step.parent_step = next((j for j in range(k - 1, -1, -1) if PRODUCES.get(chain[j]) == step.uses), None)


class ToolCall(BaseModel):
    """One planning request (JSON tool call, or what :func:`parse_text` read from words)."""

    model_config = ConfigDict(extra="forbid")

    skill: str | None = None
    action: str | None = None
    automl_policy: str | bool | None = None
    spec_overrides: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)
    parent_job_id: str | None = Field(
        None, description="A job whose output this action consumes (the job system resolves the file)."
    )
    parent_artifact: Artifact | None = Field(
        None, description="What to take from the parent job; default by action (see consumes())."
    )
    request: str | None = Field(None, description="The request's words, light typos repaired (read for the policy).")
    corrections: list[str] = Field(default_factory=list, description="Typos repaired, e.g. 'sterio -> stereo'.")
    next_actions: list[str] = Field(
        default_factory=list,
        description="Later steps, in order, by action name (JSON may give {action, inputs} objects here).",
    )
    next_steps: list[NextStep] = Field(
        default_factory=list, description="The same later steps with their own inputs (one per next_actions entry)."
    )

    @model_validator(mode="before")
    @classmethod
    def _split_steps(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        inputs = data.get("inputs")
        job = inputs.get("parent_job") if isinstance(inputs, dict) else None
        if isinstance(job, str) and "/" not in job and JOB_ID_RE.fullmatch(job):  # an id, not a folder
            inputs = {("parent_job_id" if k == "parent_job" else k): v for k, v in inputs.items()}
        if isinstance(inputs, dict) and "parent_job_id" in inputs:
            inputs = dict(inputs)
            parent = inputs.pop("parent_job_id")
            if data.get("parent_job_id") not in (None, parent):
                raise ValueError("parent_job_id: given twice with different values (top level and inputs)")
            data["inputs"], data["parent_job_id"] = inputs, parent
        names = data.get("next_actions") or []
        if isinstance(names, list) and any(isinstance(n, dict) for n in names):
            if data.get("next_steps"):
                raise ValueError("next_actions: give later steps either as objects here or in next_steps, not both")
            data["next_steps"] = [n if isinstance(n, dict) else {"action": n} for n in names]
            data["next_actions"] = [n.get("action") if isinstance(n, dict) else n for n in names]
        return data

    @field_validator("inputs")
    @classmethod
    def _canonical_inputs(cls, value: dict[str, Any]) -> dict[str, Any]:
        return canonical_inputs(value)

    @field_validator("parent_job_id")
    @classmethod
    def _job_id(cls, value: str | None) -> str | None:
        if value is not None and not JOB_ID_RE.fullmatch(value.strip()):
            raise ValueError(f"{value!r} is not a job id (letters, digits, '-', '_' or '.')")
        return value.strip() if value else None

    @model_validator(mode="after")
    def _steps_agree(self) -> ToolCall:
        if self.next_steps and not self.next_actions:
            self.next_actions = [s.action for s in self.next_steps]
        elif self.next_actions and not self.next_steps:
            self.next_steps = [NextStep(action=a) for a in self.next_actions]
        elif [s.action for s in self.next_steps] != self.next_actions:
            raise ValueError("next_actions and next_steps name different actions")
        if self.action:
            link_steps(self.action, self.next_steps)
        return self
