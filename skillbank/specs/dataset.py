"""``dataset`` section: splits, data sources and augmentation (docs/spec_and_results.md, "dataset", "Augmentation")."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from skillbank.specs.base import SpecSection
from skillbank.specs.fields import spec_field

STEREO_DATASET_CLASSES = [
    "FSD",
    "IsaacRealDataset",
    "Crestereo",
    "Middlebury",
    "Eth3d",
    "Kitti",
    "GenericDataset",
]
MONO_DATASET_CLASSES = ["NYUDv2", "GenericMonoDataset", "RelativeMonoDataset", "MetricMonoDataset"]


class DataSource(SpecSection):
    """One annotation file and the dataset class that reads it."""

    dataset_name: str = spec_field(
        description=(
            "Dataset class that reads the file, case-insensitive: "
            + ", ".join(STEREO_DATASET_CLASSES)
            + " (stereo) or "
            + ", ".join(MONO_DATASET_CLASSES)
            + " (mono); user-registered classes are accepted too."
        )
    )
    data_file: str = spec_field(
        description="Annotation file: one sample a line, 'left right [disparity [nocc_mask]]' (stereo) "
        "or 'image [depth]' (mono). Relative paths inside resolve against the file's folder.",
        path=True,
    )


class Augmentation(SpecSection):
    """Augmentation and normalisation of one split. Eval and inference splits use only normalisation
    (and a deterministic resize when input_height/input_width are set)."""

    input_mean: list[float] = spec_field(
        default_factory=lambda: [0.485, 0.456, 0.406], description="Per-channel mean (RGB, 0..1 scale)."
    )
    input_std: list[float] = spec_field(
        default_factory=lambda: [0.229, 0.224, 0.225], description="Per-channel std (RGB, 0..1 scale)."
    )
    crop_size: list[int] = spec_field(
        default_factory=lambda: [518, 518],
        description="Training crop [H, W]. Stereo networks need multiples of 32 after padding; 320x736 "
        "is the usual FFS crop.",
    )
    min_scale: float = spec_field(-0.2, "Min log2 scale of the random resize.", ge=-2.0, le=2.0)
    max_scale: float = spec_field(0.4, "Max log2 scale of the random resize.", ge=-2.0, le=2.0)
    do_flip: bool = spec_field(False, "Enable geometric flips (see h_flip_prob, v_flip_prob).")
    yjitter_prob: float = spec_field(1.0, "Probability of a small vertical shift of the right image.", ge=0, le=1)
    color_aug_prob: float = spec_field(0.2, "Probability of asymmetric (per-view) colour jitter.", ge=0, le=1)
    brightness: float = spec_field(0.4, "Colour jitter brightness factor range.", ge=0, le=2)
    contrast: float = spec_field(0.4, "Colour jitter contrast factor range.", ge=0, le=2)
    saturation: list[float] = spec_field(
        default_factory=lambda: [0.0, 1.4], description="Colour jitter saturation factor [lo, hi]."
    )
    hue: list[float] = spec_field(
        default_factory=lambda: [-5 / 180, 5 / 180],
        description="Colour jitter hue shift [lo, hi] (fraction of a turn).",
    )
    eraser_aug_prob: float = spec_field(0.5, "Probability of erasing patches of the right image.", ge=0, le=1)
    spatial_aug_prob: float = spec_field(1.0, "Probability of the random resize.", ge=0, le=1)
    stretch_prob: float = spec_field(0.8, "Probability of an anisotropic stretch.", ge=0, le=1)
    max_stretch: float = spec_field(0.2, "Max log2 stretch between x and y.", ge=0, le=1)
    h_flip_prob: float = spec_field(
        0.5, "Probability of a horizontal flip (views swapped and mirrored) when do_flip.", ge=0, le=1
    )
    v_flip_prob: float = spec_field(0.5, "Probability of a vertical flip of both views when do_flip.", ge=0, le=1)
    hshift_prob: float = spec_field(0.5, "Probability of a small horizontal shift of the right view.", ge=0, le=1)
    crop_min_valid_disp_ratio: float = spec_field(
        0.0, "Retry random crops until this fraction of pixels has valid GT.", ge=0, le=1
    )

    @model_validator(mode="after")
    def _check_pairs(self) -> Augmentation:
        for key, value, n in (
            ("input_mean", self.input_mean, 3),
            ("input_std", self.input_std, 3),
            ("crop_size", self.crop_size, 2),
            ("saturation", self.saturation, 2),
            ("hue", self.hue, 2),
        ):
            if len(value) != n:
                raise ValueError(f"{key}: expected {n} values, got {len(value)}")
        if any(s <= 0 for s in self.input_std):
            raise ValueError("input_std: every value must be > 0")
        if any(c < 32 for c in self.crop_size):
            raise ValueError(f"crop_size: each side must be >= 32, got {self.crop_size}")
        if self.min_scale > self.max_scale:
            raise ValueError(f"min_scale: {self.min_scale} is above max_scale {self.max_scale}")
        return self


class DatasetSplit(SpecSection):
    """One split (train, val, test or infer)."""

    data_sources: list[DataSource] = spec_field(
        default_factory=list, description="Annotation files of this split; several are concatenated."
    )
    batch_size: int = spec_field(1, "Samples per batch (per GPU).", ge=1, le=1024)
    workers: int = spec_field(8, "DataLoader worker processes.", ge=0, le=128)
    pin_memory: bool = spec_field(True, "Pin host memory for faster host-to-GPU copies.")
    augmentation: Augmentation = spec_field(default_factory=Augmentation, description="Augmentation block.")


class DatasetConfig(SpecSection):
    """``dataset``: what to read and how to augment it."""

    dataset_name: Literal["StereoDataset", "MonoDataset"] = spec_field(
        "StereoDataset",
        "StereoDataset for the stereo models, MonoDataset for DepthAnything.",
        options=["StereoDataset", "MonoDataset"],
    )
    max_disparity: int = spec_field(
        416,
        "GT disparities >= this are invalid. Defaults to model.max_disparity when omitted (TAO falls "
        "back to 416 even for FFS, a silent trap).",
        ge=1,
        le=416,
    )
    baseline: float | None = spec_field(None, "Stereo baseline in metres (for depth from disparity).", gt=0)
    focal_x: float | None = spec_field(None, "Focal length in pixels (for depth from disparity).", gt=0)
    min_depth: float = spec_field(0.001, "Mono: depths below this are invalid (metres).", ge=0)
    max_depth: float = spec_field(10.0, "Mono: depths above this are invalid; metric head range (metres).", gt=0)
    normalize_depth: bool = spec_field(False, "Mono: normalise depth targets to 0..1.")
    train_dataset: DatasetSplit = spec_field(default_factory=DatasetSplit, description="Training split.")
    val_dataset: DatasetSplit = spec_field(
        default_factory=lambda: DatasetSplit(batch_size=1), description="Validation split."
    )
    test_dataset: DatasetSplit = spec_field(default_factory=DatasetSplit, description="Evaluation split.")
    infer_dataset: DatasetSplit = spec_field(default_factory=DatasetSplit, description="Inference split.")

    @model_validator(mode="after")
    def _check_depth(self) -> DatasetConfig:
        if self.min_depth >= self.max_depth:
            raise ValueError(f"min_depth: {self.min_depth} must be below max_depth {self.max_depth}")
        return self
