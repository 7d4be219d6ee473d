"""The settings of one study: the spec's ``automl`` section over the model skill's AutoML defaults.

:func:`resolve` finds the model skill of the spec (``model.model_type`` = the skill's ``network_arch``),
checks that its AutoML really runs (enabled, train schema and template present), builds the search space
and picks metric and direction. The result, :class:`StudySettings`, is plain JSON: it is stored in the
Optuna study, so a worker on another machine needs only the storage URL and the study name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from skillbank.automl.algorithms import prunes
from skillbank.automl.space import Param, build_space
from skillbank.specs import ExperimentSpec, SpecError, spec_to_dict

#: Where a study lives inside the spec's results folder.
AUTOML_DIR = "automl"


@dataclass
class StudySettings:
    """Everything a runner or worker needs to run trials of one study."""

    skill: str
    algorithm: str
    metric: str
    direction: str
    max_trials: int
    max_epochs: int
    reduction_factor: int
    max_concurrent: int
    seed: int
    delete_intermediate_ckpt: bool
    params: list[dict[str, Any]]
    base_spec: dict[str, Any]
    automl_dir: str
    trial_epochs: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def space(self) -> list[Param]:
        return [
            Param(**{**p, "options": tuple(p["options"]) if p.get("options") is not None else None})
            for p in self.params
        ]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StudySettings:
        return cls(**data)

    def search_signature(self) -> dict[str, Any]:
        """What must not change when a study is resumed: algorithm, metric, direction and space."""
        return {"algorithm": self.algorithm, "metric": self.metric, "direction": self.direction, "params": self.params}


def find_skill(model_type: str) -> Any:
    """The model skill whose network is ``model_type``; SpecError naming model.model_type if none."""
    from skillbank.registry import default_registry

    for skill in default_registry().list():
        archs = [skill.network_arch, *(skill.info.get("other_network_archs") or [])]
        if skill.kind == "model" and model_type in archs:
            return skill
    raise SpecError([f"model.model_type: no model skill runs {model_type}"])


def resolve(spec: ExperimentSpec, skill: Any | None = None) -> StudySettings:
    """Settings of the study for ``spec`` (one-line SpecError on anything that cannot run)."""
    skill = skill or find_skill(spec.model.model_type)
    status = skill.automl_status()
    if not status.runnable:
        raise SpecError([f"automl: {status.reason}"])
    defaults: dict[str, Any] = dict(skill.info.get("automl") or {})
    cfg = spec.automl
    if not spec.results_dir:
        raise SpecError(["results_dir: required for an AutoML study (its trials go to <results_dir>/automl)"])
    params = build_space(defaults, list(cfg.automl_hyperparameters), dict(cfg.custom_param_ranges))
    metric = cfg.metric or defaults.get("metric")
    if not metric:
        raise SpecError(["automl.metric: the model skill names no metric; set automl.metric"])
    direction = cfg.direction
    if direction is None:
        if metric != defaults.get("metric"):
            raise SpecError(
                [
                    f"automl.direction: required when metric {metric} is not the skill's "
                    f"({defaults.get('metric')}); minimize or maximize"
                ]
            )
        direction = defaults.get("direction", "minimize")
    algorithm = cfg.automl_algorithm
    epochs = cfg.automl_max_epochs if prunes(algorithm) else spec.train.num_epochs
    base = spec_to_dict(spec)
    base.pop("automl", None)
    automl_dir = str(Path(spec.results_dir) / AUTOML_DIR)
    return StudySettings(
        skill=skill.name,
        algorithm=algorithm,
        metric=metric,
        direction=direction,
        max_trials=cfg.automl_max_recommendations,
        max_epochs=cfg.automl_max_epochs,
        reduction_factor=cfg.automl_reduction_factor,
        max_concurrent=cfg.automl_max_concurrent,
        seed=cfg.seed,
        delete_intermediate_ckpt=cfg.automl_delete_intermediate_ckpt,
        params=[asdict(p) | {"options": list(p.options) if p.options is not None else None} for p in params],
        base_spec=base,
        automl_dir=automl_dir,
        trial_epochs=epochs,
    )
