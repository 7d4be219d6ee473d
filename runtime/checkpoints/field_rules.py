"""Which spec field a tensor dimension comes from: turns shape mismatches into spec advice.

A checkpoint trained with other widths fails ``load_state_dict`` with hundreds of raw size dumps. Each
:class:`FieldRule` says "dimension ``dim`` of the tensors whose key matches ``pattern`` equals spec field
``field``" (docs/networks.md, "The 15 width fields", with names checked against
``ffs_bp2_state_dict.tsv``). :func:`diagnose` reads the field's value off both tensors, so the message
can say ``model.gru_hidden: checkpoint has 60, spec has 128`` and name one example tensor.

Rules only cover dimensions that one field controls on its own; sums (the GRU input 48+1+48 = 97) are
left to the field that also shows up alone elsewhere. ``max_disparity`` changes no tensor shape in FFS or
FS (the disparity transformer's positions are computed, not learned), so it cannot be diagnosed here:
spec validation has to catch it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Leaf names of a conv / norm / linear layer whose dim 0 is the layer's output width.
_OUT = r"\.(?:weight|bias|running_mean|running_var)$"
_W = r"\.weight$"

VIT_EMBED_TO_ENCODER: dict[int, str] = {384: "vits", 768: "vitb", 1024: "vitl", 1536: "vitg"}


@dataclass(frozen=True)
class FieldRule:
    """Dimension ``dim`` of tensors matching ``pattern`` equals spec ``field`` (after ``// divisor``)."""

    field: str
    pattern: str
    dim: int
    divisor: int = 1
    names: Mapping[int, str] = field(default_factory=dict)  # value -> spelled value (ViT widths)

    def matches(self, key: str) -> bool:
        return re.search(self.pattern, key) is not None

    def value(self, size: int) -> int | str:
        """The field value implied by a dimension of this size."""
        raw = size // self.divisor if size % self.divisor == 0 else size / self.divisor
        return self.names.get(int(raw), raw) if self.names else raw


def _rules(field_name: str, *entries: tuple[str, int]) -> list[FieldRule]:
    return [FieldRule(field_name, pattern, dim) for pattern, dim in entries]


_UB = r"^update_block\."
_DH = _UB + r"disp_head\.conv\."

FFS_FIELD_RULES: tuple[FieldRule, ...] = tuple(
    _rules("model.motion_encoder_widths[0]", (_UB + r"encoder\.convc1" + _OUT, 0), (_UB + r"encoder\.convc2" + _W, 1))
    + _rules("model.motion_encoder_widths[1]", (_UB + r"encoder\.convc2" + _OUT, 0))
    + _rules("model.motion_encoder_widths[2]", (_UB + r"encoder\.convd1" + _OUT, 0), (_UB + r"encoder\.convd2" + _W, 1))
    + _rules("model.motion_encoder_widths[3]", (_UB + r"encoder\.convd2" + _OUT, 0))
    + _rules("model.motion_encoder_final", (_UB + r"encoder\.conv" + _OUT, 0))
    + _rules("model.gru_gating_conv_widths[0]", (_UB + r"gru04\.conv0\.0" + _OUT, 0))
    + _rules(
        "model.gru_gating_conv_widths[1]",
        (_UB + r"gru04\.conv1\.0" + _OUT, 0),
        (_UB + r"gru04\.(?:small|large)_gru\.conv[zr]" + _W, 1),
    )
    + _rules("model.gru_hidden", (_UB + r"gru04\.(?:small|large)_gru\.conv[zrq]" + _OUT, 0))
    + _rules("model.disp_head_input_dim", (_DH + r"0" + _W, 1))
    + _rules(
        "model.disp_head_intermediate",
        (_DH + r"0" + _OUT, 0),
        (_DH + r"[23]\.(?:gamma|dwconv\.weight|dwconv\.bias|pwconv2\.weight|pwconv2\.bias)$", 0),
        (_DH + r"[23]\.pwconv1" + _W, 1),
        (_DH + r"4" + _W, 1),
    )
    + _rules("model.disp_head_pwconv1_widths[0]", (_DH + r"2\.pwconv1" + _OUT, 0), (_DH + r"2\.pwconv2" + _W, 1))
    + _rules("model.disp_head_pwconv1_widths[1]", (_DH + r"3\.pwconv1" + _OUT, 0), (_DH + r"3\.pwconv2" + _W, 1))
    + _rules("model.gru_hidden", (_UB + r"mask\.0" + _W, 1))
    + _rules("model.mask_widths[0]", (_UB + r"mask\.0" + _OUT, 0), (_UB + r"mask\.2" + _W, 1))
    + _rules("model.mask_widths[1]", (_UB + r"mask\.2" + _OUT, 0))
    + _rules("model.stem_2_widths[0]", (r"^stem_2\.0\.conv" + _OUT, 0), (r"^stem_2\.1" + _W, 1))
    + _rules("model.stem_2_widths[1]", (r"^stem_2\.1" + _OUT, 0))
    # ConvTranspose weights are (in, out, k, k).
    + _rules("model.spx_2_gru_widths[0]", (r"^spx_2_gru\.conv1\.conv" + _W, 0))
    + _rules("model.spx_2_gru_widths[1]", (r"^spx_2_gru\.conv1\.conv" + _W, 1))
    + _rules("model.spx_2_gru_widths[3]", (r"^spx_2_gru\.conv2\.conv" + _OUT, 0), (r"^spx_gru\.0" + _W, 0))
    + _rules("model.spx_gru_out", (r"^spx_gru\.0" + _W, 1), (r"^spx_gru\.0\.bias$", 0))
    + _rules("model.cnet_conv04_widths[0]", (r"^cnet\.conv04\.0\." + r"(?:conv|norm)" + _OUT, 0))
    + _rules("model.cnet_conv04_widths[1]", (r"^cnet\.conv04\.1\." + r"(?:conv|norm)" + _OUT, 0))
    + _rules("model.cam_mid_channels", (r"^cam\.fc\.0" + _W, 0), (r"^cam\.fc\.2" + _W, 1))
    + _rules("model.cnet_conv04_widths[1]", (r"^cam\.fc\.0" + _W, 1), (r"^cam\.fc\.2" + _W, 0))
    + _rules(
        "model.volume_dim",
        (r"^corr_feature_att\.[01]\.(?:conv|norm)" + _OUT, 0),
        (r"^corr_feature_att\.1\.conv" + _W, 1),
        (r"^corr_feature_att\.2\.feat_att\.1" + _OUT, 0),
        (r"^classifier\.0" + _W, 1),
        (r"^cost_agg\.conv1_up\.conv" + _W, 1),
        (r"^cost_agg\.conv1_up\.norm" + _OUT, 0),
        (r"^cost_agg\.feature_att_8\.layers\.0\.(?:conv|norm)" + _OUT, 0),
        (r"^cost_agg\.feature_att_8\.layers\.1\.conv1\.0" + _W, 1),
        (r"^cost_agg\.post8_to_4\.(?:upsample\.0|out\.0)\.(?:conv|norm)" + _OUT, 0),
        (r"^cost_agg\.post8_to_4\.out\.1\.(?:conv[12]|bn[12])" + _OUT, 0),
        (r"^cost_agg\.post8_to_4\.upsample\.1\.sa\.\d+\.(?:self_attn\.\w+_proj|linear2|norm[12])" + _OUT, 0),
        (r"^cost_agg\.post8_to_4\.upsample\.1\.sa\.\d+\.linear1" + _W, 1),
    )
)

# FoundationStereo (teacher). Our FS sizes every GRU level with one width, gru_hidden (which defaults
# to hidden_dims[0]); context_zqr_convs.{i} are sized by hidden_dims[i] (out = 3 * hidden: z, r, q).
# FS's classifier is conv-block (volume_dim -> classifier_mid), residual block, conv (-> 1).
FS_FIELD_RULES: tuple[FieldRule, ...] = tuple(
    _rules("model.gru_hidden", (_UB + r"gru(?:08|16)\.(?:\w+\.)?conv[zrq]\w*" + _OUT, 0))
    + [FieldRule(f"model.hidden_dims[{i}]", rf"^context_zqr_convs\.{i}" + _W, 1) for i in range(3)]
    + [FieldRule(f"model.hidden_dims[{i}]", rf"^context_zqr_convs\.{i}" + _OUT, 0, divisor=3) for i in range(3)]
    + _rules("model.volume_dim", (r"^classifier\.0\.conv" + _W, 1))
    + _rules(
        "model.classifier_mid",
        (r"^classifier\.0\.(?:conv|norm)" + _OUT, 0),
        (r"^classifier\.1\.(?:conv[12]|bn[12])" + _OUT, 0),
        (r"^classifier\.2" + _W, 1),
    )
)

VIT_FIELD_RULES: tuple[FieldRule, ...] = tuple(
    FieldRule("model.encoder", pattern, dim, names=VIT_EMBED_TO_ENCODER)
    for pattern, dim in (
        (r"(?:^|\.)cls_token$", 2),
        (r"(?:^|\.)pos_embed$", 2),
        (r"(?:^|\.)mask_token$", 1),
        (r"(?:^|\.)patch_embed\.proj" + _OUT, 0),
        (r"(?:^|\.)blocks\.\d+\.norm[12]" + _OUT, 0),
        (r"(?:^|\.)blocks\.\d+\.attn\.proj" + _OUT, 0),
    )
)

DEFAULT_FIELD_RULES: tuple[FieldRule, ...] = FFS_FIELD_RULES + FS_FIELD_RULES + VIT_FIELD_RULES


@dataclass(frozen=True)
class FieldDiagnosis:
    """One shape mismatch explained by a spec field."""

    field: str
    checkpoint_value: int | float | str
    spec_value: int | float | str
    key: str
    checkpoint_shape: tuple[int, ...]
    model_shape: tuple[int, ...]


def diagnose(
    key: str,
    checkpoint_shape: Sequence[int],
    model_shape: Sequence[int],
    rules: Sequence[FieldRule] = DEFAULT_FIELD_RULES,
) -> FieldDiagnosis | None:
    """The first rule that matches ``key`` on a dimension where the shapes differ, or None."""
    ckpt, want = tuple(checkpoint_shape), tuple(model_shape)
    for rule in rules:
        if rule.dim >= min(len(ckpt), len(want)) or ckpt[rule.dim] == want[rule.dim]:
            continue
        if rule.matches(key):
            return FieldDiagnosis(
                rule.field, rule.value(ckpt[rule.dim]), rule.value(want[rule.dim]), key, ckpt, want
            )
    return None


def format_shape(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(s) for s in shape) + "]"
