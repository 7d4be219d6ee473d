"""The whole depth_net experiment spec, and what each action needs from it."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import model_validator

from skillbank.specs.actions import (
    ActionName,
    ConvertConfig,
    EvaluateConfig,
    ExportConfig,
    GenTrtEngineConfig,
    InferenceConfig,
    WandbConfig,
)
from skillbank.specs.automl import AutomlConfig
from skillbank.specs.base import SpecSection
from skillbank.specs.dataset import DatasetConfig
from skillbank.specs.dotted import get_dotted
from skillbank.specs.fields import spec_field
from skillbank.specs.model import MONO_TYPES, ModelConfig
from skillbank.specs.train import TrainConfig

ACTIONS: tuple[str, ...] = get_args(ActionName)


class ExperimentSpec(SpecSection):
    """A depth_net experiment: one spec shared by every action (TAO's layout)."""

    results_dir: str | None = spec_field(
        None,
        "Top-level results folder; each action writes to <results_dir>/<action> unless its own results_dir is set.",
        path=True,
    )
    encryption_key: str | None = spec_field(None, "TAO model encryption key (accepted, unused: files are plain).")
    dataset: DatasetConfig = spec_field(default_factory=DatasetConfig, description="Data.")
    model: ModelConfig = spec_field(default_factory=ModelConfig, description="Network.")
    train: TrainConfig = spec_field(default_factory=TrainConfig, description="Training.")
    evaluate: EvaluateConfig = spec_field(default_factory=EvaluateConfig, description="Evaluation.")
    inference: InferenceConfig = spec_field(default_factory=InferenceConfig, description="Inference.")
    export: ExportConfig = spec_field(default_factory=ExportConfig, description="ONNX export.")
    gen_trt_engine: GenTrtEngineConfig = spec_field(
        default_factory=GenTrtEngineConfig, description="TensorRT engine build."
    )
    convert: ConvertConfig = spec_field(default_factory=ConvertConfig, description="Dataset conversion.")
    wandb: WandbConfig = spec_field(default_factory=WandbConfig, description="Experiment tracking.")
    automl: AutomlConfig = spec_field(
        default_factory=AutomlConfig, description="AutoML search (skillbank automl run; depth_net ignores it)."
    )

    @model_validator(mode="before")
    @classmethod
    def _dataset_follows_model(cls, data: Any) -> Any:
        """dataset.max_disparity defaults to the model's (TAO's 416 fallback shifts FFS disparities)."""
        if not isinstance(data, dict):
            return data
        dataset = data.get("dataset")
        if dataset is None or (isinstance(dataset, dict) and "max_disparity" not in dataset):
            model = data.get("model")
            try:
                model_cfg = model if isinstance(model, ModelConfig) else ModelConfig.model_validate(model or {})
            except Exception:  # the model section's own errors are reported by its validation
                return data
            ds = dict(dataset or {})
            ds["max_disparity"] = model_cfg.max_disparity
            if model_cfg.model_type in MONO_TYPES and "dataset_name" not in ds:
                ds["dataset_name"] = "MonoDataset"
            data = {**data, "dataset": ds}
        return data

    @model_validator(mode="after")
    def _check_cross(self) -> ExperimentSpec:
        mono = self.model.model_type in MONO_TYPES
        if mono != (self.dataset.dataset_name == "MonoDataset"):
            raise ValueError(
                f"dataset.dataset_name: {self.dataset.dataset_name} does not fit model.model_type "
                f"{self.model.model_type} (use {'MonoDataset' if mono else 'StereoDataset'})"
            )
        if not mono and self.dataset.max_disparity > self.model.max_disparity:
            raise ValueError(
                f"dataset.max_disparity: {self.dataset.max_disparity} exceeds model.max_disparity "
                f"{self.model.max_disparity}; GT beyond the cost volume cannot be learned"
            )
        return self


#: Spec keys each action must have set (besides a results folder), with what they are for.
ACTION_REQUIREMENTS: dict[str, list[tuple[str, str]]] = {
    "train": [("dataset.train_dataset.data_sources", "training annotation files")],
    "evaluate": [
        ("evaluate.checkpoint|evaluate.trt_engine", "the model to evaluate"),
        ("dataset.test_dataset.data_sources", "evaluation annotation files"),
    ],
    "inference": [
        ("inference.checkpoint|inference.trt_engine", "the model to run"),
        ("dataset.infer_dataset.data_sources", "inference annotation files"),
    ],
    "export": [("export.checkpoint", "the checkpoint to export")],
    "gen_trt_engine": [("gen_trt_engine.onnx_file", "the ONNX file to build from")],
    "convert": [],
}

#: Data splits each action reads.
ACTION_SPLITS: dict[str, list[str]] = {
    "train": ["train_dataset", "val_dataset"],
    "evaluate": ["test_dataset"],
    "inference": ["infer_dataset"],
}


def missing_requirements(spec: ExperimentSpec, action: str) -> list[str]:
    """Problems that stop ``action`` from running on ``spec``: '<dotted key>: <what is needed>'."""
    problems = []
    for keys, what in ACTION_REQUIREMENTS.get(action, []):
        alternatives = keys.split("|")
        if not any(get_dotted(spec, k) for k in alternatives):
            problems.append(f"{alternatives[0]}: required for {action} ({what})")
    if action == "convert" and spec.convert.mode == "folders" and not spec.convert.data_root:
        problems.append("convert.data_root: required for convert in 'folders' mode")
    return problems
