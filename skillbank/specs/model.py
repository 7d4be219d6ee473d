"""``model`` section: network type, common stereo/mono fields and the 15 FFS width fields.

Per-type defaults: a FastFoundationStereo spec that omits a field gets the bp2 value (the released
checkpoint's block, docs/networks.md "The bp2 spec block"), so TAO's silent traps (max_disparity falling back
to 416, gwc normalisation off) cannot happen. The 15 width fields go together: omit all of them for bp2,
or give all of them for a custom pruning; a partial width block is an error naming the missing keys
(TAO gives an opaque shape mismatch).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from skillbank.specs.base import SpecSection
from skillbank.specs.fields import spec_field

MODEL_TYPES = ["FoundationStereo", "FastFoundationStereo", "MetricDepthAnything", "RelativeDepthAnything"]
STEREO_TYPES = {"FoundationStereo", "FastFoundationStereo"}
MONO_TYPES = {"MetricDepthAnything", "RelativeDepthAnything"}

#: The 15 width fields of FastFoundationStereo, bp2 values (docs/networks.md, "The 15 width fields").
FFS_BP2_WIDTHS: dict[str, Any] = {
    "motion_encoder_widths": [56, 96, 16, 12],
    "motion_encoder_final": 48,
    "gru_hidden": 60,
    "gru_gating_conv_widths": [100, 168],
    "disp_head_input_dim": 60,
    "disp_head_intermediate": 36,
    "disp_head_pwconv1_widths": [212, 244],
    "mask_widths": [32, 16],
    "stem_2_widths": [12, 16],
    "spx_2_gru_widths": [16, 12, 16, 24],
    "spx_gru_out": 9,
    "classifier_mid": 14,
    "cnet_conv04_widths": [60, 48],
    "cam_mid_channels": 8,
    "cost_agg_conv_patch_padding": [0, 0, 0],
}
#: Number of values each list-valued width field takes.
WIDTH_LIST_LENGTHS = {k: len(v) for k, v in FFS_BP2_WIDTHS.items() if isinstance(v, list)}

#: Non-width fields of the bp2 block (docs/networks.md, "The bp2 spec block").
FFS_BP2_MODEL: dict[str, Any] = {
    "encoder": "vitl",
    "hidden_dims": [128],
    "n_gru_layers": 1,
    "corr_radius": 4,
    "corr_levels": 2,
    "n_downsample": 2,
    "train_iters": 22,
    "valid_iters": 8,
    "max_disparity": 192,
    "volume_dim": 28,
    "mixed_precision": False,
    "gwc_feature_normalize": True,
}

#: Defaults that differ from the section-4 defaults, per model type (applied to omitted keys only).
TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "FastFoundationStereo": {**FFS_BP2_MODEL, **FFS_BP2_WIDTHS},
    "FoundationStereo": {"volume_dim": 28},
    "MetricDepthAnything": {"encoder": "vits"},
    "RelativeDepthAnything": {"encoder": "vits"},
}


class StereoBackbone(SpecSection):
    """Backbones of the stereo networks (FoundationStereo uses both; FFS uses EdgeNeXt only)."""

    depth_anything_v2_pretrained_path: str | None = spec_field(
        None,
        "DepthAnythingV2 weights for FoundationStereo's frozen ViT (local file; never downloaded).",
        path=True,
    )
    edgenext_pretrained_path: str | None = spec_field(
        None, "EdgeNeXt-small weights (timm key layout) for the CNN features (local file).", path=True
    )
    use_bn: bool = spec_field(False, "BatchNorm in the DPT head of the ViT branch.")
    use_clstoken: bool = spec_field(False, "Use the ViT class token in the DPT readout.")


class MonoBackbone(SpecSection):
    """Backbone of DepthAnythingV2."""

    pretrained_path: str | None = spec_field(
        None, "DepthAnythingV2 weights (upstream key layout; local file, never downloaded).", path=True
    )
    use_bn: bool = spec_field(False, "BatchNorm in the DPT head.")
    use_clstoken: bool = spec_field(False, "Use the ViT class token in the DPT readout.")


def _width(description: str) -> Any:
    return spec_field(None, description + " FastFoundationStereo only; bp2 value when all widths are omitted.")


class ModelConfig(SpecSection):
    """``model``: which network and its shape."""

    model_type: Literal["FoundationStereo", "FastFoundationStereo", "MetricDepthAnything", "RelativeDepthAnything"] = (
        spec_field("FoundationStereo", "Network to build.", options=MODEL_TYPES)
    )
    encoder: Literal["vits", "vitb", "vitl", "vitg"] = spec_field(
        "vitl",
        "ViT size of the DepthAnythingV2 branch (FFS has no ViT; kept for TAO compatibility).",
        options=["vits", "vitb", "vitl", "vitg"],
    )
    hidden_dims: list[int] = spec_field(
        default_factory=lambda: [128, 128, 128], description="GRU hidden widths, one per GRU level."
    )
    corr_radius: int = spec_field(4, "Lookup radius: 2r+1 taps around the current disparity.", ge=1, le=8)
    cv_group: int = spec_field(8, "Groups of the group-wise correlation volume.", ge=1, le=64)
    train_iters: int = spec_field(22, "Refinement iterations in training.", ge=1, le=64)
    valid_iters: int = spec_field(22, "Refinement iterations in evaluation/inference/export.", ge=1, le=64)
    volume_dim: int = spec_field(32, "Channels of the filtered cost volume.", ge=4, le=128)
    low_memory: int = spec_field(0, "Memory-saving level (0 = off .. 4 = most saving).", ge=0, le=4)
    mixed_precision: bool = spec_field(False, "Run the network under autocast (train.precision decides dtype).")
    n_gru_layers: int = spec_field(3, "GRU levels (1 = 1/4 only, up to 3).", ge=1, le=3)
    corr_levels: int = spec_field(2, "Pooled levels of the lookup pyramid.", ge=1, le=4)
    n_downsample: int = spec_field(2, "Feature resolution 1/2**n_downsample (2 = 1/4).", ge=2, le=2)
    max_disparity: int = spec_field(
        416, "Largest disparity the cost volume covers, full-res pixels (multiple of 32).", ge=32, le=416
    )
    gwc_feature_normalize: bool = spec_field(
        False, "L2-normalise features before the group-wise correlation (bp2: true)."
    )
    disparity_attention_layout: Literal["heads", "tokens"] = spec_field(
        "heads",
        "Disparity Transformer attention layout: 'heads' mixes the heads at each position (upstream since "
        "mid-2025; what the FFS bp2 weights were trained with), 'tokens' attends across disparity tokens.",
        options=["heads", "tokens"],
    )
    stereo_backbone: StereoBackbone = spec_field(default_factory=StereoBackbone, description="Stereo backbones.")
    mono_backbone: MonoBackbone = spec_field(default_factory=MonoBackbone, description="Mono backbone.")

    motion_encoder_widths: list[int] | None = _width(
        "[corr 1x1, corr 3x3, disp 7x7, disp 3x3] output widths of the motion encoder."
    )
    motion_encoder_final: int | None = _width("Motion encoder output conv width (disparity appended after).")
    gru_hidden: int | None = _width("GRU hidden width (= cnet_conv04_widths[0] = disp_head_input_dim).")
    gru_gating_conv_widths: list[int] | None = _width("Selective GRU conv0 and conv1 widths.")
    disp_head_input_dim: int | None = _width("Disparity head input width (must equal gru_hidden).")
    disp_head_intermediate: int | None = _width("Disparity head first conv / EdgeNeXt block width.")
    disp_head_pwconv1_widths: list[int] | None = _width("Hidden widths of the two disparity-head EdgeNeXt MLPs.")
    mask_widths: list[int] | None = _width("Upsampling mask head widths.")
    stem_2_widths: list[int] | None = _width("Stride-2 image stem widths of the upsampler.")
    spx_2_gru_widths: list[int] | None = _width("[in, mid, rem, out] widths of the upsampler's spx_2_gru.")
    spx_gru_out: int | None = _width("Upsampling weights per pixel (3x3 = 9; fixed).")
    classifier_mid: int | None = _width("FoundationStereo classifier mid width (bp2 classifier has none).")
    cnet_conv04_widths: list[int] | None = _width("Context heads: [hidden init (= gru_hidden), GRU input].")
    cam_mid_channels: int | None = _width("Channel-attention bottleneck width.")
    cost_agg_conv_patch_padding: list[int] | None = _width("Padding of the hourglass patch conv (not run by bp2).")

    @model_validator(mode="before")
    @classmethod
    def _apply_type_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        model_type = data.get("model_type", "FoundationStereo")
        defaults = TYPE_DEFAULTS.get(model_type) if isinstance(model_type, str) else None
        if not defaults:
            return data
        if model_type == "FastFoundationStereo":
            given = [k for k in FFS_BP2_WIDTHS if data.get(k) is not None]
            if given and len(given) != len(FFS_BP2_WIDTHS):
                missing = [k for k in FFS_BP2_WIDTHS if data.get(k) is None]
                first = missing[0]
                also = f"; also missing: {', '.join(missing[1:])}" if len(missing) > 1 else ""
                raise ValueError(
                    f"{first}: missing from a custom FastFoundationStereo width block "
                    f"({len(given)} of 15 widths set{also}); give all 15 widths, or none for bp2 "
                    f"(bp2 {first} = {FFS_BP2_WIDTHS[first]})"
                )
        return {**{k: v for k, v in defaults.items() if k not in data}, **data}

    @model_validator(mode="after")
    def _check_consistency(self) -> ModelConfig:
        if self.max_disparity % 32:
            raise ValueError(f"max_disparity: {self.max_disparity} must be a multiple of 32")
        if self.model_type in STEREO_TYPES and len(self.hidden_dims) != self.n_gru_layers:
            raise ValueError(
                f"hidden_dims: {len(self.hidden_dims)} values for n_gru_layers {self.n_gru_layers}; "
                "give one width per GRU level"
            )
        if self.model_type == "FastFoundationStereo":
            self._check_ffs_widths()
        return self

    def _check_ffs_widths(self) -> None:
        for key, n in WIDTH_LIST_LENGTHS.items():
            value = getattr(self, key)
            if len(value) != n:
                raise ValueError(f"{key}: expected {n} values, got {len(value)}")
            if any(v < 0 for v in value):
                raise ValueError(f"{key}: widths must be >= 0, got {value}")
        if self.n_gru_layers != 1:
            raise ValueError(f"n_gru_layers: FastFoundationStereo has one GRU level, got {self.n_gru_layers}")
        rules = [
            ("cnet_conv04_widths", self.cnet_conv04_widths[0], "gru_hidden", self.gru_hidden, "[0]"),
            ("disp_head_input_dim", self.disp_head_input_dim, "gru_hidden", self.gru_hidden, ""),
            ("spx_2_gru_widths", self.spx_2_gru_widths[0], "mask_widths[1]", self.mask_widths[1], "[0]"),
            ("spx_2_gru_widths", self.spx_2_gru_widths[2], "stem_2_widths[1]", self.stem_2_widths[1], "[2]"),
        ]
        for key, value, other, other_value, index in rules:
            if value != other_value:
                raise ValueError(f"{key}: {key}{index} = {value} must equal {other} = {other_value}")
        if self.spx_gru_out != 9:
            raise ValueError(f"spx_gru_out: the 3x3 convex upsampling needs 9 weights, got {self.spx_gru_out}")

    @property
    def is_stereo(self) -> bool:
        return self.model_type in STEREO_TYPES
