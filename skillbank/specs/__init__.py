"""The depth_net experiment spec as pydantic v2 models: the single source of truth.

JSON Schemas (``schemas/``) and spec templates are generated from these models
(``skillbank schemas generate``) and a test fails when the committed files drift.
"""

from .actions import (
    ConvertConfig,
    EvaluateConfig,
    ExportConfig,
    GenTrtEngineConfig,
    InferenceConfig,
    TensorRTConfig,
    WandbConfig,
)
from .automl import AutomlConfig, ParamRange
from .dataset import Augmentation, DatasetConfig, DatasetSplit, DataSource
from .dotted import get_dotted
from .errors import SpecError
from .experiment import ACTION_SPLITS, ACTIONS, ExperimentSpec, missing_requirements
from .loading import load_spec, read_yaml_mapping, spec_to_dict
from .model import FFS_BP2_MODEL, FFS_BP2_WIDTHS, MODEL_TYPES, ModelConfig
from .synthetic import SyntheticConfig
from .train import OptimConfig, TrainConfig

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
