"""A request, from JSON or from plain words, as a typed tool call (:mod:`skillbank.tool_call`).

JSON (text or a dict) is validated as a :class:`ToolCall`. Plain words ("fine-tune fast stereo on
/data/kitti, no HPO, lr 1e-5, 3 epochs, results in /runs/x") are read by :func:`parse_text`: light typos
of model and action words are repaired first (:mod:`skillbank.request_text`), then the skill comes from
model words, the steps from verbs ("train ..., then evaluate it on /data/val.txt and export it": one step
per verb, each with the paths and numbers in its own words), paths by the words before them, numbers by
their units, and a parent job from "with parent job <id>" / "from job <id>" / "parent_job_id: <id>". Only
what is clear is taken; the rest stays unset (the planner asks or reports it as missing).
``automl_policy`` words are left to :mod:`skillbank.policy`. What the planner understands is described
in docs/planner.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from skillbank.policy import HPO_REQUEST
from skillbank.request_text import PATH_PATTERN, PATH_RE, PLANNER_WORDS, mask_paths, repair_typos, word_set
from skillbank.tool_call import (
    INPUT_ALIASES,
    JOB_ID_RE,
    PRODUCES,
    Artifact,
    NextStep,
    ToolCall,
    canonical_inputs,
    consumes,
    link_steps,
)

__all__ = [
    "INPUT_ALIASES",
    "JOB_ID_RE",
    "PRODUCES",
    "Artifact",
    "NextStep",
    "ToolCall",
    "canonical_inputs",
    "consumes",
    "link_steps",
    "parent_job_from",
    "parse_request",
    "parse_text",
]


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

#: (action, pattern, verb): a verb starts a step; a noun ("onnx", "metrics", "depth maps") names the
#: action only when nothing else did, or after "then"/"finally"/... or a verb asking for it (_NOUN_STEP).
_ACTION_WORDS: list[tuple[str, re.Pattern[str], bool]] = [
    (
        "train",
        re.compile(
            r"\b(?:fine[\s-]?tun(?:e|ing)|re-?train(?:ing)?|finetun(?:e|ing)|train(?:ing)?)\b"
            r"(?!\s+(?:split|set|data(?:set)?|pairs|folder|checkpoint|run|job|loss|images|files?)\b|\s*(?:and|&|/)\s*val)",
            re.I,
        ),
        True,
    ),
    ("train", HPO_REQUEST, True),
    (
        "evaluate",
        re.compile(
            r"\b(?:eval(?:uat(?:e|ing))?|scor(?:e|ing)|benchmark|measure|test\s+on)\b"
            r"(?!\s+(?:split|set|data(?:set)?|pairs|folder|file)\b)",
            re.I,
        ),
        True,
    ),
    ("evaluate", re.compile(r"\b(?:metrics?|evaluation)\b", re.I), False),
    (
        "inference",
        re.compile(
            r"\b(?:infer(?:ence)?|predict|run\s+(?:it|the\s+model|(?:the\s+)?(?:fast\s+stereo|ffs|bp2|stereo|"
            r"foundation\s*stereo|mono|monocular|depth\s+anything(?:\s+v2)?)(?:\s+model)?)?\s*on)\b"
            r"(?!\s+(?:split|set|data(?:set)?|folder)\b)",
            re.I,
        ),
        True,
    ),
    ("inference", re.compile(r"\b(?:predictions?|(?:depth|disparity)\s+maps?)\b", re.I), False),
    ("export", re.compile(r"\bexport\b", re.I), True),
    ("export", re.compile(r"\bonnx\b", re.I), False),
    (
        "gen_trt_engine",
        re.compile(
            r"\b(?:build|generate|create|make|compile)\s+(?:an?\s+|the\s+)?(?:(?:fp16|fp32)\s+)?(?:tensorrt\s+|trt\s+)?engine"
            r"|\bgen_trt_engine\b",
            re.I,
        ),
        True,
    ),
    ("convert", re.compile(r"\b(?:convert|index\s+(?:the\s+)?(?:folders?|data))\b", re.I), True),
    ("convert", re.compile(r"\bannotation\s+files?\b", re.I), False),
]
_NEGATED_BEFORE = re.compile(
    r"\b(?:no|not|don'?t|do\s+not|without|w/o|skip(?:ping)?|never|instead\s+of|no\s+need\s+to)\s+(?:\w+\s+)?$", re.I
)
_NOUN_BEFORE = re.compile(r"\b(?:the|a|an|my|our|your|its|this|that|last|previous|during|after|from|of|into)\s+$", re.I)
_PURPOSE_TO = re.compile(r"(?<!\bwant\s)(?<!\blike\s)(?<!\bneed\s)(?<!\bthen\s)\bto\s+$", re.I)
_USE_IT_TO = re.compile(r"\b(?:use|apply|run)\s+(?:it|them|the\s+(?:new\s+)?model)\s+to\s+$", re.I)
#: Before a noun ("metrics", "predictions", "onnx") that names a later step: "then", "finally", ... or a verb
#: that asks for it ("and get predictions on ...").
_NOUN_STEP = re.compile(
    r"(?:\b(?:then|after\s+that|afterwards|finally|next|once\s+(?:it'?s\s+)?done|when\s+done)"
    r"|\b(?:get|produce|make|compute|give\s+me|write|save|create|output)(?:\s+(?:the|some|its|their))?)\s*$",
    re.I,
)

_PATH_ROLES: list[tuple[str, re.Pattern[str]]] = [
    (
        "results_dir",
        re.compile(
            r"\b(?:results?|outputs?|save|write|store)\w*(?:\s+\w+){0,2}\s+(?:in|to|into|under|at)\s+" + PATH_PATTERN,
            re.I,
        ),
    ),
    ("results_dir", re.compile(r"\b(?:results_dir|output_dir|out)\s*[=:]?\s*" + PATH_PATTERN, re.I)),
    ("resume_model", re.compile(r"\bresum\w*(?:\s+\w+){0,2}\s+(?:from\s+)?" + PATH_PATTERN, re.I)),
    ("eval_dataset", re.compile(r"\b(?:validat\w*|val)\s+(?:on|with|data|set)\s+" + PATH_PATTERN, re.I)),
]
_FILE_ROLES = [
    (re.compile(r"\.(?:engine|plan|trt)$", re.I), "trt_engine"),
    (re.compile(r"\.onnx$", re.I), "onnx_file"),
    (re.compile(r"\.(?:pth|pt|ckpt|tlt|safetensors)$", re.I), "checkpoint"),
]
_DATA_ROLE = {"train": "train_datasets", "evaluate": "eval_dataset", "inference": "inference_dataset"}

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

_ID = r"[\"'`]?(" + JOB_ID_RE.pattern + r")"
#: "with parent job <id>", "parent_job_id: <id>", "job id <id>"; "from job <id>", "of job <id>", "job <id>'s".
#: Words that follow "from job" in ordinary sentences (:data:`_NOT_IDS`) are not ids: "from job results".
_PARENT_LABELLED = re.compile(r"\b(?:parent[\s_-]?job(?:[\s_-]?id)?|job[\s_-]?id)\s*(?:[:=#]\s*|\s+)#?" + _ID, re.I)
_PARENT_LOOSE = re.compile(
    r"\b(?:(?:from|of|after|using|on\s+top\s+of)\s+(?:the\s+)?job\s+#?" + _ID + r"|\bjob\s+#?" + _ID + r"'s)", re.I
)
_NOT_IDS = word_set(
    """a an the this that these those which where what when before above earlier later last previous same
    and or with to on in at of for from is was are were be id ids number no path folder dir directory
    results result output outputs run runs checkpoint checkpoints file files data log logs list queue
    history weights model models it its one"""
)


def _skill_from(text: str) -> str | None:
    found = [name for name, pattern in _SKILL_WORDS if pattern.search(text)]
    if "depth-net-fast-stereo" in found:
        found = [f for f in found if f != "depth-net-stereo"]
    if len(found) != 1:
        return None if not found else "?" + ",".join(found)
    return found[0]


@dataclass
class _Step:
    action: str
    start: int
    end: int = -1


def _action_hits(words: str) -> list[tuple[int, str, bool]]:
    hits: list[tuple[int, str, bool]] = []
    for name, pattern, verb in _ACTION_WORDS:
        for m in pattern.finditer(words):
            before = words[max(0, m.start() - 40) : m.start()]
            if _NEGATED_BEFORE.search(before):
                continue  # "no training", "without exporting"
            if name == "train" and m.group(0).lower() in ("train", "training") and _NOUN_BEFORE.search(before):
                continue  # "the training run", "after training"
            hits.append((m.start(), name, verb))
    return sorted(hits)


def _steps_from(words: str) -> list[_Step]:
    """The actions the words ask for, in order, each with the span of words that belong to it."""
    steps: list[_Step] = []
    nouns: list[tuple[int, str]] = []
    for start, name, verb in _action_hits(words):
        if steps and name == steps[-1].action:
            continue
        before = words[max(0, start - 40) : start]
        if steps and _PURPOSE_TO.search(before) and not _USE_IT_TO.search(before):
            continue  # a purpose ("train mono to predict depth"), not a step
        if not steps and not verb:
            nouns.append((start, name))
            continue
        if verb or _NOUN_STEP.search(before):
            steps.append(_Step(name, start))
    if not steps and nouns:
        steps = [_Step(nouns[0][1], nouns[0][0])]
    if not steps:
        return []
    steps[0].start = 0
    for step, following in zip(steps, steps[1:], strict=False):
        step.end = following.start
    steps[-1].end = len(words)
    return steps


def parent_job_from(text: str) -> str | None:
    """The parent job a request names ("with parent job <id>", "from job <id>", "parent_job_id: <id>")."""
    words = mask_paths(text)
    for pattern in (_PARENT_LABELLED, _PARENT_LOOSE):
        for m in pattern.finditer(words):
            job = next(g for g in m.groups() if g)
            if job.lower() not in _NOT_IDS:
                return job
    return None


def _results_dir(text: str) -> tuple[str, int] | None:
    """The results folder named anywhere in the request (it is the whole chain's), and where it is."""
    for role, pattern in _PATH_ROLES:
        m = pattern.search(text) if role == "results_dir" else None
        if m:
            return m.group(1).rstrip("."), m.start(1)
    return None


def _path_inputs(
    text: str, action: str | None, span: tuple[int, int], claimed: set[int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inputs (and convert overrides) from the paths inside ``span`` of ``text``, read for ``action``;
    paths at ``claimed`` offsets are taken already."""
    inputs: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    claimed = set(claimed)
    inside = [(m.start(1), m.group(1).rstrip(".")) for m in PATH_RE.finditer(text) if span[0] <= m.start(1) < span[1]]
    for role, pattern in _PATH_ROLES:
        if role == "results_dir":
            continue
        for m in pattern.finditer(text):
            if span[0] <= m.start(1) < span[1] and role not in inputs and m.start(1) not in claimed:
                inputs[role] = m.group(1).rstrip(".")
                claimed.add(m.start(1))
                break
    for start, path in inside:
        if start in claimed:
            continue
        role = next((r for pat, r in _FILE_ROLES if pat.search(path)), None)
        before = text[max(0, start - 40) : start].lower()
        if role == "checkpoint" and action == "train":
            role = "resume_model" if "resum" in before else "pretrained_model"
        elif role is None:
            if re.search(
                r"\b(?:from|of|using)\s+(?:the\s+)?(?:run|job|results?|folder|checkpoints?\s+in)?\s*$", before
            ) and (action in ("evaluate", "inference", "export", "gen_trt_engine")):
                role = "parent_job_dir"
            elif action == "convert":
                overrides.setdefault("convert.data_root", path)
                continue
            else:
                role = _DATA_ROLE.get(action or "")
        if role is None or (role in inputs and role != "train_datasets"):
            continue
        if role == "train_datasets":
            inputs.setdefault(role, []).append(path)
        else:
            inputs[role] = path
    return inputs, overrides


def _train_numbers(text: str) -> dict[str, Any]:
    """Training settings read from the words: lr, weight decay, epochs, GPUs (with one id each), seed."""
    overrides: dict[str, Any] = {}
    for key, pattern, kind in _NUMBERS:
        m = pattern.search(text)
        if m and key not in overrides:
            overrides[key] = kind(float(m.group(1))) if kind is int else float(m.group(1))
    if "train.num_gpus" in overrides:  # "2 GPUs": one id each (the spec checks ids against num_gpus)
        overrides["train.gpu_ids"] = list(range(int(overrides["train.num_gpus"])))
    return overrides


def _action_numbers(text: str, action: str | None) -> dict[str, Any]:
    """Overrides of one step read from its words: batch size, export shape, engine precision."""
    overrides: dict[str, Any] = {}
    m = re.search(r"\b(fp16|fp32)\s+(?:tensorrt\s+|trt\s+)?engine\b", text, re.I)
    if m and action == "gen_trt_engine":
        overrides["gen_trt_engine.tensorrt.data_type"] = m.group(1).upper()
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
    return overrides


@lru_cache(maxsize=16)
def _vocabulary(extra: frozenset[str]) -> frozenset[str]:
    return PLANNER_WORDS | {w.lower() for w in extra}


def parse_text(text: str, vocabulary: Iterable[str] | None = None) -> ToolCall:
    """Read a plain-words request into a :class:`ToolCall` (only what is clear).

    ``vocabulary``: extra words to repair typos against (the router passes the registry's action and
    architecture names); the planner's own model, action and AutoML words are always used.
    """
    vocab = _vocabulary(frozenset(vocabulary or ()))
    text, fixes = repair_typos(text, vocab)
    words = mask_paths(text, "\u00b7")  # folder names like /runs/x/train/ are not verbs, models or spaces
    skill = _skill_from(words)
    steps = _steps_from(words)
    action = steps[0].action if steps else None
    first_span = (0, steps[1].start if len(steps) > 1 else len(text))

    results = _results_dir(text)
    taken = {results[1]} if results else set()
    inputs, overrides = _path_inputs(text, action, first_span, taken)
    if results:
        inputs = {"results_dir": results[0], **inputs}
    # train settings ("lr 1e-5", "3 epochs") belong to the first step unless a later step is the training
    train_here = action == "train" or not any(step.action == "train" for step in steps)
    if train_here:
        overrides.update(_train_numbers(text))
    overrides.update(_action_numbers(text[first_span[0] : first_span[1]], action))
    m = re.search(r"\b(fp16|fp32)\s+(?:tensorrt\s+|trt\s+)?engine\b", text, re.I)
    if m:
        overrides["gen_trt_engine.tensorrt.data_type"] = m.group(1).upper()
    m = re.search(r"\b(?:train(?:ing)?\s+in|precision)\s+(fp32|fp16|bf16)\b", text, re.I)
    if m and train_here:
        overrides["train.precision"] = m.group(1).lower()
    if skill == "depth-net-mono" and re.search(r"\brelative\b", words, re.I):
        overrides["model.model_type"] = "RelativeDepthAnything"
    dataset_name = next((cls for word, cls in _DATASET_CLASSES.items() if re.search(rf"\b{word}\b", text, re.I)), None)
    if dataset_name:
        inputs.setdefault("dataset_name", dataset_name)
    if re.search(r"\blatest\b", words, re.I):
        inputs["latest"] = True

    next_steps: list[NextStep] = []
    for step in steps[1:]:
        segment = text[step.start : step.end]
        step_inputs, step_overrides = _path_inputs(text, step.action, (step.start, step.end), taken)
        step_overrides.update(_action_numbers(segment, step.action))
        if step.action == "train":
            step_overrides.update(_train_numbers(text))
        fields: dict[str, Any] = {"action": step.action, "inputs": step_inputs, "spec_overrides": step_overrides}
        if step.action in ("evaluate", "inference") and re.search(r"\b(?:engine|tensorrt|trt)\b", segment, re.I):
            fields["uses"] = "engine"
        next_steps.append(NextStep(**fields))
    return ToolCall(
        skill=skill,
        action=action,
        spec_overrides=overrides,
        inputs=inputs,
        parent_job_id=parent_job_from(text),
        request=text,
        corrections=[f"{typo} -> {word}" for typo, word in fixes],
        next_steps=next_steps,
    )


def parse_request(request: str | dict[str, Any] | ToolCall, vocabulary: Iterable[str] | None = None) -> ToolCall:
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
    return parse_text(text, vocabulary)
