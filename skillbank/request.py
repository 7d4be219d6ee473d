"""A request as a typed tool call, from JSON or from plain words.

JSON tool call (what an agent sends)::

    {"skill": "depth-net-fast-stereo", "action": "train", "automl_policy": "off",
     "spec_overrides": {"learning_rate": 1e-5, "train": {"num_epochs": 3}},
     "inputs": {"train_datasets": ["/data/kitti"], "eval_dataset": "/data/kitti_val", "results_dir": "/runs/x"}}

Plain words ("fine-tune fast stereo on /data/kitti, no HPO, lr 1e-5, 3 epochs, results in /runs/x") are
read by :func:`parse_text`: the skill from model words, the action from verbs, paths by the words before
them, numbers by their units. Only what is clear is taken; the rest stays unset (the planner asks or
reports it as missing). ``automl_policy`` words are left to :mod:`skillbank.policy`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class ToolCall(BaseModel):
    """One planning request (JSON tool call, or what :func:`parse_text` read from words)."""

    model_config = ConfigDict(extra="forbid")

    skill: str | None = None
    action: str | None = None
    automl_policy: str | bool | None = None
    spec_overrides: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)
    request: str | None = Field(None, description="The request's words (used for the automl_policy).")
    next_actions: list[str] = Field(default_factory=list, description="Later steps the words asked for.")

    @field_validator("inputs")
    @classmethod
    def _canonical_inputs(cls, value: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = INPUT_ALIASES.get(key)
            if name is None:
                raise ValueError(
                    f"inputs.{key}: unknown input; use one of {', '.join(sorted(set(INPUT_ALIASES.values())))}"
                )
            if name == "train_datasets" and isinstance(item, str):
                item = [item]
            out[name] = item
        return out


# --------------------------------------------------------------------------------------------- words
_SKILL_WORDS: list[tuple[str, re.Pattern[str]]] = [
    (
        "depth-net-fast-stereo",
        re.compile(r"\bfast[\s-]*(?:foundation[\s-]*)?stereo\b|\bffs\b|\bbp2\b|\breal[\s-]?time\s+stereo\b", re.I),
    ),
    (
        "depth-net-mono",
        re.compile(
            r"\bmono(?:cular)?\b|\bdepth[\s-]*anything(?:[\s-]*v2)?\b|\bsingle[\s-]image\b|\b(?:metric|relative)\s+depth\b"
            r"|\b(?:metric|relative)depthanything\b|\bnyu(?:dv2|d)?\b",
            re.I,
        ),
    ),
    ("depth-net-stereo", re.compile(r"\bfoundation[\s-]*stereo\b|\bstereo\b", re.I)),
]

_ACTION_WORDS: list[tuple[str, re.Pattern[str]]] = [
    ("train", re.compile(r"\b(?:fine[\s-]?tun(?:e|ing)|train(?:ing)?|re-?train|finetune)\b", re.I)),
    ("evaluate", re.compile(r"\b(?:evaluat(?:e|ion|ing)|score|benchmark|measure|metrics?|test\s+on)\b", re.I)),
    (
        "inference",
        re.compile(r"\b(?:infer(?:ence)?|predict(?:ions?)?|(?:depth|disparity)\s+maps?|run\s+(?:it\s+)?on)\b", re.I),
    ),
    ("export", re.compile(r"\b(?:export|onnx)\b", re.I)),
    (
        "gen_trt_engine",
        re.compile(
            r"\b(?:build|generate|create|make|compile)\s+(?:an?\s+|the\s+)?(?:(?:fp16|fp32)\s+)?(?:tensorrt\s+|trt\s+)?engine"
            r"|\bgen_trt_engine\b",
            re.I,
        ),
    ),
    ("convert", re.compile(r"\b(?:convert|annotation\s+files?|index\s+(?:the\s+)?(?:folders?|data))\b", re.I)),
]

_PATH = r"((?<![\w/~.])(?:~|\.{1,2})?/[^\s,;'\"]+)"
_PATH_ROLES: list[tuple[str, re.Pattern[str]]] = [
    (
        "results_dir",
        re.compile(
            r"\b(?:results?|outputs?|save|write|store)\w*(?:\s+\w+){0,2}\s+(?:in|to|into|under|at)\s+" + _PATH, re.I
        ),
    ),
    ("results_dir", re.compile(r"\b(?:results_dir|output_dir|out)\s*[=:]?\s*" + _PATH, re.I)),
    ("resume_model", re.compile(r"\bresum\w*(?:\s+\w+){0,2}\s+(?:from\s+)?" + _PATH, re.I)),
    ("eval_dataset", re.compile(r"\b(?:validat\w*|val)\s+(?:on|with|data|set)\s+" + _PATH, re.I)),
]
_FILE_ROLES = [
    (re.compile(r"\.(?:engine|plan|trt)$", re.I), "trt_engine"),
    (re.compile(r"\.onnx$", re.I), "onnx_file"),
    (re.compile(r"\.(?:pth|pt|ckpt|tlt|safetensors)$", re.I), "checkpoint"),
]

_DATASET_CLASSES = {
    "kitti": "Kitti",
    "middlebury": "Middlebury",
    "eth3d": "Eth3d",
    "fsd": "FSD",
    "crestereo": "Crestereo",
    "isaac": "IsaacRealDataset",
    "nyu": "NYUDv2",
    "nyudv2": "NYUDv2",
}

_NUM = r"([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)"
_NUMBERS: list[tuple[str, re.Pattern[str], type]] = [
    ("train.optim.lr", re.compile(r"\b(?:lr|learning[\s_-]rate)\s*(?:of|=|:|to)?\s*" + _NUM, re.I), float),
    ("train.optim.weight_decay", re.compile(r"\bweight[\s_-]decay\s*(?:of|=|:|to)?\s*" + _NUM, re.I), float),
    ("train.optim.lr_decay", re.compile(r"\blr[\s_-]decay\s*(?:of|=|:|to)?\s*" + _NUM, re.I), float),
    ("train.num_epochs", re.compile(r"\b([0-9]+)\s*epochs?\b", re.I), int),
    ("train.num_epochs", re.compile(r"\bepochs?\s*(?:=|:)?\s*([0-9]+)\b", re.I), int),
    ("train.num_gpus", re.compile(r"\b([0-9]+)\s*gpus?\b", re.I), int),
    ("train.seed", re.compile(r"\bseed\s*(?:=|:)?\s*([0-9]+)\b", re.I), int),
]


def _first_path_after(pattern: re.Pattern[str], text: str) -> tuple[str, int] | None:
    m = pattern.search(text)
    return (m.group(1).rstrip("."), m.start(1)) if m else None


def _skill_from(text: str) -> str | None:
    found = [name for name, pattern in _SKILL_WORDS if pattern.search(text)]
    if "depth-net-fast-stereo" in found:
        found = [f for f in found if f != "depth-net-stereo"]
    if len(found) != 1:
        return None if not found else "?" + ",".join(found)
    return found[0]


def _actions_from(text: str) -> list[str]:
    hits: list[tuple[int, str]] = []
    for name, pattern in _ACTION_WORDS:
        m = pattern.search(text)
        if m:
            hits.append((m.start(), name))
    names = [name for _, name in sorted(hits)]
    if (
        "export" in names
        and "gen_trt_engine" in names
        and re.search(r"\bexport\w*\s+(?:it\s+)?to\s+onnx\b", text, re.I) is None
    ):
        names.remove("export")  # "build an engine from x.onnx": onnx names the input, not a step
    if {"evaluate", "inference"} & set(names) and "train" not in names and "gen_trt_engine" in names:
        names.remove("gen_trt_engine")
    return names


def parse_text(text: str) -> ToolCall:
    """Read a plain-words request into a :class:`ToolCall` (only what is clear)."""
    overrides: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    words = re.sub(_PATH, " ", text)  # folder names like /runs/x/train/ are not verbs or models
    skill = _skill_from(words)
    actions = _actions_from(words)
    action = actions[0] if actions else None

    claimed: set[int] = set()
    for role, pattern in _PATH_ROLES:
        hit = _first_path_after(pattern, text)
        if hit and role not in inputs and hit[1] not in claimed:
            inputs[role] = hit[0]
            claimed.add(hit[1])
    for m in re.finditer(_PATH, text):
        if m.start(1) in claimed:
            continue
        path = m.group(1).rstrip(".")
        role = next((r for pat, r in _FILE_ROLES if pat.search(path)), None)
        before = text[max(0, m.start() - 40) : m.start()].lower()
        if role == "checkpoint" and action == "train":
            role = "resume_model" if "resum" in before else "pretrained_model"
        elif role is None:
            if re.search(
                r"\b(?:from|of|using)\s+(?:the\s+)?(?:run|job|results?|folder|checkpoints?\s+in)?\s*$", before
            ) and (action in ("evaluate", "inference", "export", "gen_trt_engine")):
                role = "parent_job_dir"
            else:
                role = {
                    "train": "train_datasets",
                    "evaluate": "eval_dataset",
                    "inference": "inference_dataset",
                    "convert": None,
                }.get(action or "")
                if action == "convert":
                    overrides["convert.data_root"] = path
                    continue
        if role is None or (role in inputs and role != "train_datasets"):
            continue
        if role == "train_datasets":
            inputs.setdefault(role, []).append(path)
        else:
            inputs[role] = path

    for key, pattern, kind in _NUMBERS:
        m = pattern.search(text)
        if m and key not in overrides:
            overrides[key] = kind(float(m.group(1))) if kind is int else float(m.group(1))
    m = re.search(r"\b(fp16|fp32)\s+(?:tensorrt\s+|trt\s+)?engine\b", text, re.I)
    if m:
        overrides["gen_trt_engine.tensorrt.data_type"] = m.group(1).upper()
    m = re.search(r"\b(?:train(?:ing)?\s+in|precision)\s+(fp32|fp16|bf16)\b", text, re.I)
    if m:
        overrides["train.precision"] = m.group(1).lower()
    m = re.search(r"\bbatch[\s_-]?size\s*(?:of|=|:)?\s*([0-9]+)\b", text, re.I)
    if m:
        split = {"train": "train_dataset", "evaluate": "test_dataset", "inference": "infer_dataset"}.get(action or "")
        if split:
            overrides[f"dataset.{split}.batch_size"] = int(m.group(1))
        elif action in ("export", "gen_trt_engine"):
            overrides[f"{action}.batch_size"] = int(m.group(1))
    if action == "export":
        m = re.search(r"\b([0-9]{2,4})\s*[x×]\s*([0-9]{2,4})\b", text)
        if m:
            overrides["export.input_height"], overrides["export.input_width"] = int(m.group(1)), int(m.group(2))
        if re.search(r"\bdynamic\s+batch\b", text, re.I):
            overrides["export.batch_size"] = -1
        if re.search(r"\bdynamic\s+(?:shapes?|h/?w|height|resolution|size)\b", text, re.I):
            overrides["export.dynamic_hw"] = True
    if skill == "depth-net-mono" and re.search(r"\brelative\b", text, re.I):
        overrides["model.model_type"] = "RelativeDepthAnything"
    for word, cls in _DATASET_CLASSES.items():
        if re.search(rf"\b{word}\b", text, re.I):
            inputs.setdefault("dataset_name", cls)
            break
    if re.search(r"\blatest\b", text, re.I):
        inputs["latest"] = True
    return ToolCall(
        skill=skill,
        action=action,
        spec_overrides=overrides,
        inputs=inputs,
        request=text,
        next_actions=actions[1:],
    )


def parse_request(request: str | dict[str, Any] | ToolCall) -> ToolCall:
    """A :class:`ToolCall` from a ToolCall, a dict, JSON text or plain words."""
    if isinstance(request, ToolCall):
        return request
    if isinstance(request, dict):
        return ToolCall.model_validate(request)
    text = request.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"request: looks like JSON but does not parse: {exc.msg} (column {exc.colno})") from None
        if not isinstance(data, dict):
            raise ValueError("request: a JSON tool call must be an object")
        return ToolCall.model_validate(data)
    return parse_text(text)
