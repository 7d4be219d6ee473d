"""Every metric a skill names is one the runtime logs for that skill's model type.

The runtime's names are taken from the runtime itself: the per-image metric functions averaged the way
training validation and ``depth_net evaluate`` average them (``MetricAverager.result("val/")``), so a
rename on either side fails here.
"""

from __future__ import annotations

import re

import pytest

from skillbank.registry import Registry, Skill
from skillbank.specs.model import STEREO_TYPES

torch = pytest.importorskip("torch")

METRIC_RE = re.compile(r"\bval/[a-z0-9_]+")


def runtime_metric_names(stereo: bool) -> set[str]:
    """The ``val/...`` KPI names the runtime logs for a stereo or a mono model."""
    from skillbank.runtime.metrics import (
        MONO_METRICS,
        STEREO_METRICS,
        MetricAverager,
        mono_image_metrics,
        stereo_image_metrics,
    )

    gt = torch.tensor([[1.0, 2.0], [4.0, 8.0]])
    mask = torch.ones_like(gt, dtype=torch.bool)
    per_image = stereo_image_metrics(gt + 0.5, gt, mask) if stereo else mono_image_metrics(gt * 1.1, gt, mask)
    averager = MetricAverager(STEREO_METRICS if stereo else MONO_METRICS)  # what validation and evaluate use
    averager.add(per_image)
    names = set(averager.result("val/"))
    assert names == {f"val/{n}" for n in per_image}, "the averaged names must be the per-image metric names"
    if stereo:  # evaluate adds the non-occluded variants when the annotation has a nocc mask
        names |= {f"{n}_noc" for n in names}
    return names | {"val/images"}


def named_metrics(skill: Skill) -> dict[str, set[str]]:
    """{metric: files naming it} over SKILL.md, references/*.md, skill_info.yaml and the AutoML metric."""
    found: dict[str, set[str]] = {}
    files = [skill.path / "SKILL.md", *sorted((skill.path / "references").glob("*.md"))]
    info_file = skill.path / "references" / "skill_info.yaml"
    if info_file.is_file():
        files.append(info_file)
    for path in files:
        for name in METRIC_RE.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, set()).add(str(path.relative_to(skill.path.parent)))
    metric = (skill.info.get("automl") or {}).get("metric")
    if metric:
        found.setdefault(str(metric), set()).add(f"{skill.name}/references/skill_info.yaml: automl.metric")
    return found


def model_kinds(skill: Skill) -> set[bool]:
    """{True} stereo, {False} mono, both for a workflow skill (it may speak of every model)."""
    archs = [skill.info.get("network_arch"), *(skill.info.get("other_network_archs") or [])]
    archs = [a for a in archs if a]
    return {a in STEREO_TYPES for a in archs} if archs else {True, False}


def test_mono_uses_tao_names() -> None:
    mono, stereo = runtime_metric_names(False), runtime_metric_names(True)
    assert {"val/abs_rel", "val/rmse", "val/d1", "val/d2", "val/d3"} <= mono
    assert not any(n.startswith("val/delta") for n in mono)
    assert {"val/epe", "val/bp1", "val/bp2", "val/bp3", "val/d1", "val/rmse"} <= stereo


@pytest.mark.parametrize("name", sorted(Registry.load().skills))
def test_every_metric_a_skill_names_is_logged(name: str) -> None:
    skill = Registry.load().get(name)
    logged: set[str] = set()
    for stereo in model_kinds(skill):
        logged |= runtime_metric_names(stereo)
    unknown = {m: sorted(files) for m, files in named_metrics(skill).items() if m not in logged}
    assert not unknown, f"{name} names metrics the runtime does not log: {unknown} (logged: {sorted(logged)})"


def test_mono_automl_metric_is_d1_maximised() -> None:
    info = Registry.load().get("depth-net-mono").info["automl"]
    assert (info["metric"], info["direction"]) == ("val/d1", "maximize")
