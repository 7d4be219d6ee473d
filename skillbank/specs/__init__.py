"""The depth_net experiment spec as pydantic v2 models: the single source of truth.

JSON Schemas (``schemas/``) and spec templates are generated from these models
(``skillbank schemas generate``) and a test fails when the committed files drift.
"""

from skillbank.specs.actions import (
    ConvertConfig,
    EvaluateConfig,
    ExportConfig,
    GenTrtEngineConfig,
    InferenceConfig,
    TensorRTConfig,
    WandbConfig,
)
from skillbank.specs.automl import AutomlConfig, ParamRange
from skillbank.specs.dataset import Augmentation, DatasetConfig, DatasetSplit, DataSource
from skillbank.specs.dotted import get_dotted
from skillbank.specs.errors import SpecError
from skillbank.specs.experiment import ACTION_SPLITS, ACTIONS, ExperimentSpec, missing_requirements
from skillbank.specs.loading import load_spec, read_yaml_mapping, spec_to_dict
from skillbank.specs.model import FFS_BP2_MODEL, FFS_BP2_WIDTHS, MODEL_TYPES, ModelConfig
from skillbank.specs.synthetic import SyntheticConfig
from skillbank.specs.train import OptimConfig, TrainConfig

__all__ = [
    "ACTIONS",
    "ACTION_SPLITS",
    "Augmentation",
    "AutomlConfig",
    "ConvertConfig",
    "DataSource",
    "DatasetConfig",
    "DatasetSplit",
    "EvaluateConfig",
    "ExperimentSpec",
    "ExportConfig",
    "FFS_BP2_MODEL",
    "FFS_BP2_WIDTHS",
    "GenTrtEngineConfig",
    "InferenceConfig",
    "MODEL_TYPES",
    "ModelConfig",
    "OptimConfig",
    "ParamRange",
    "SpecError",
    "SyntheticConfig",
    "TensorRTConfig",
    "TrainConfig",
    "WandbConfig",
    "get_dotted",
    "load_spec",
    "missing_requirements",
    "read_yaml_mapping",
    "spec_to_dict",
]
