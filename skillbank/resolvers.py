"""Resolvers named in a skill's ``spec_params``: they turn a request's inputs into spec values.

``spec_params.<action>.<spec key>`` is either a literal or one of these names:

- ``output_dir``: the request's results folder (``inputs.results_dir``).
- ``parent_model``: the model file this action consumes: ``inputs.checkpoint`` (``inputs.onnx_file`` for
  gen_trt_engine), else a file picked from the parent job's folder (``inputs.parent_job_dir``).
- ``parent_model_folder``: the parent job's folder itself.
- ``ptm_if_no_resume_model``: ``inputs.pretrained_model`` (or ``inputs.checkpoint``) unless the run
  resumes (then nothing).
- ``resume_model``: ``inputs.resume_model``.
- ``create_onnx_file``: ``<results_dir>/export/<model_type>.onnx``.
- ``create_engine_file``: ``<results_dir>/gen_trt_engine/model_<fp16|fp32>.engine``.

Picking from a parent folder (the folder or its ``train/``, ``export/``, ``gen_trt_engine/``): the exact
``model_epoch_EEE_step_SSSSS.pth`` with the highest (epoch, step); ``dn_model_latest.pth`` only when the
request asks for "latest"; a single ``*.onnx`` / ``*.engine`` for the deploy steps. A resolver that
cannot decide returns None and says why in :attr:`Resolution.note`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skillbank.checkpoint_names import LATEST_NAME as LATEST
from skillbank.checkpoint_names import newest_checkpoint

RESOLVERS = (
    "output_dir",
    "parent_model",
    "parent_model_folder",
    "ptm_if_no_resume_model",
    "resume_model",
    "create_onnx_file",
    "create_engine_file",
)


@dataclass(frozen=True)
class Resolution:
    value: Any
    note: str = ""


def _candidates(folder: Path, sub: str) -> list[Path]:
    return [d for d in (folder, folder / sub) if d.is_dir()]


def pick_checkpoint(folder: str | Path, latest: bool = False) -> Resolution:
    """The checkpoint a parent train job produced (exact epoch/step file; latest only when asked)."""
    dirs = _candidates(Path(folder), "train")
    if not dirs:
        return Resolution(None, f"parent folder {folder} not found")
    if latest:
        for d in dirs:
            if (d / LATEST).is_file():
                return Resolution(str(d / LATEST), f"{LATEST} (the request asked for latest)")
    found = [hit for hit in (newest_checkpoint(d) for d in dirs) if hit is not None]
    if found:
        epoch, step, path = max(found, key=lambda hit: (hit[0], hit[1]))
        return Resolution(str(path), f"newest exact checkpoint in {folder} (epoch {epoch}, step {step})")
    hint = f"; only {LATEST} is there: say 'latest' to use it" if any((d / LATEST).exists() for d in dirs) else ""
    return Resolution(None, f"no model_epoch_*_step_*.pth in {folder}{hint}")


def pick_single(folder: str | Path, sub: str, suffix: str) -> Resolution:
    """The one ``*<suffix>`` file of a parent export / gen_trt_engine job."""
    dirs = _candidates(Path(folder), sub)
    if not dirs:
        return Resolution(None, f"parent folder {folder} not found")
    files = sorted({p for d in dirs for p in d.glob(f"*{suffix}")})
    if len(files) == 1:
        return Resolution(str(files[0]), f"the {suffix} file in {folder}")
    if not files:
        return Resolution(None, f"no {suffix} file in {folder}")
    return Resolution(None, f"several {suffix} files in {folder} ({', '.join(p.name for p in files)}): name one")


def resolve(name: str, action: str, inputs: dict[str, Any], spec: dict[str, Any]) -> Resolution:
    """Value of resolver ``name`` for ``action`` given the request ``inputs`` and the spec built so far."""
    results_dir = inputs.get("results_dir")
    parent = inputs.get("parent_job_dir")
    if name == "output_dir":
        return Resolution(results_dir, "" if results_dir else "no results folder given (say 'results in /path')")
    if name == "parent_model_folder":
        return Resolution(parent, "" if parent else "no parent job folder given")
    if name == "resume_model":
        return Resolution(inputs.get("resume_model"))
    if name == "ptm_if_no_resume_model":
        if inputs.get("resume_model"):
            return Resolution(None, "resuming: pretrained weights are not loaded")
        return Resolution(inputs.get("pretrained_model") or inputs.get("checkpoint"))
    if name == "parent_model":
        if action == "gen_trt_engine":
            if inputs.get("onnx_file"):
                return Resolution(inputs["onnx_file"])
            return pick_single(parent, "export", ".onnx") if parent else Resolution(None, "no ONNX file given")
        if inputs.get("checkpoint"):
            return Resolution(inputs["checkpoint"])
        if parent:
            return pick_checkpoint(parent, bool(inputs.get("latest")))
        return Resolution(None, "no checkpoint given (a .pth file, or the parent job's folder)")
    if name == "create_onnx_file":
        if not results_dir:
            return Resolution(None, "needs a results folder")
        model_type = (spec.get("model") or {}).get("model_type", "model")
        return Resolution(f"{results_dir.rstrip('/')}/export/{model_type}.onnx")
    if name == "create_engine_file":
        if not results_dir:
            return Resolution(None, "needs a results folder")
        dtype = ((spec.get("gen_trt_engine") or {}).get("tensorrt") or {}).get("data_type", "FP16")
        return Resolution(f"{results_dir.rstrip('/')}/gen_trt_engine/model_{str(dtype).lower()}.engine")
    raise ValueError(f"spec_params: unknown resolver {name!r}; known: {', '.join(RESOLVERS)}")
