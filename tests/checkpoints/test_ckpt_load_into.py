"""load_into / plan_load: never-run drops, strictness, and mismatch messages that name spec fields."""

from __future__ import annotations

import logging
import re
import types

import pytest
import torch
from torch import nn

from skillbank.runtime.checkpoints import (
    NEVER_RUN_MODULES,
    CheckpointMismatchError,
    load_into,
    normalise_keys,
    plan_load,
)

CONTEXT_ZQR_PARAMS = 442_752
COST_AGG_LEFTOVER_PARAMS = 2_611_564
RUNNING_PARAMS = 14_600_541


# ---- never-run drop list --------------------------------------------------------------------------


def test_never_run_list_matches_the_manifest(manifest):
    owners_not_run = {r.owner for r in manifest if not r.runs}
    assert all(any(o == m or o.startswith(m + ".") for m in NEVER_RUN_MODULES) for o in owners_not_run)
    assert all(any(o == m or o.startswith(m + ".") for o in owners_not_run) for m in NEVER_RUN_MODULES)


def test_tao_checkpoint_drops_exactly_the_never_run_tensors(manifest, bp2_expected_shapes, bp2_tao_checkpoint):
    plan = plan_load(bp2_expected_shapes, bp2_tao_checkpoint)
    report = plan.report

    assert list(report.dropped) == [r.key for r in manifest if not r.runs]
    assert len(report.dropped) == 197
    by_module = {m.module: m.parameters for m in report.dropped_modules}
    assert by_module["context_zqr_convs"] == CONTEXT_ZQR_PARAMS
    assert sum(v for k, v in by_module.items() if k.startswith("cost_agg.")) == COST_AGG_LEFTOVER_PARAMS
    assert report.dropped_parameters == CONTEXT_ZQR_PARAMS + COST_AGG_LEFTOVER_PARAMS
    assert [m.module for m in report.dropped_modules] == list(NEVER_RUN_MODULES)
    summary = report.drop_summary()
    assert summary.startswith("dropped 197 never-run tensors (3,054,316 parameters) from context_zqr_convs (442,752)")
    assert report.kept_from_model == ()
    loaded_params = sum(
        v.numel() for k, v in plan.to_load.items()
        if k.rsplit(".", 1)[-1] not in ("running_mean", "running_var", "num_batches_tracked") and k != "dx"
    )
    assert loaded_params == RUNNING_PARAMS
    assert set(plan.to_load) == set(bp2_expected_shapes)


def test_upstream_names_without_dx_load_and_keep_the_models_dx(bp2_upstream_checkpoint, bp2_expected_shapes):
    upstream = bp2_upstream_checkpoint
    assert "dx" not in upstream
    state_dict, _ = normalise_keys({"model." + k: v for k, v in upstream.items()})
    report = plan_load(bp2_expected_shapes, state_dict).report
    assert report.kept_from_model == ("dx",)
    assert len(report.loaded) == len(bp2_expected_shapes) - 1


def test_unexpected_and_missing_keys_are_errors(bp2_expected_shapes, bp2_tao_checkpoint):
    sd = dict(bp2_tao_checkpoint)
    sd["teacher.head.weight"] = torch.zeros(3)
    del sd["classifier.0.bias"]
    with pytest.raises(CheckpointMismatchError) as info:
        plan_load(bp2_expected_shapes, sd)
    message = str(info.value)
    assert "1 tensors missing from the checkpoint (e.g. classifier.0.bias)" in message
    assert "1 unexpected tensors in the checkpoint (e.g. teacher.head.weight)" in message
    assert "\n" not in message


def test_never_run_keys_load_normally_when_the_network_builds_them(bp2_tao_checkpoint, manifest):
    everything = {r.key: r.shape for r in manifest}  # e.g. the FS teacher, which runs these modules
    report = plan_load(everything, bp2_tao_checkpoint).report
    assert report.dropped == () and len(report.loaded) == 722


# ---- shape mismatches explained by spec fields ----------------------------------------------------


def _spec_shapes(expected: dict[str, tuple[int, ...]], edits: dict[str, dict[int, int]]) -> dict:
    """Expected shapes with ``{key regex: {dim: new size}}`` edits: the network a different spec builds."""
    out = {}
    for key, shape in expected.items():
        new = list(shape)
        for pattern, dims in edits.items():
            if re.search(pattern, key):
                for dim, size in dims.items():
                    if dim < len(new):  # num_batches_tracked is a scalar
                        new[dim] = size
        out[key] = tuple(new)
    return out


def _mismatch(expected, checkpoint, edits) -> str:
    with pytest.raises(CheckpointMismatchError) as info:
        plan_load(_spec_shapes(expected, edits), checkpoint)
    return str(info.value)


def test_gru_hidden_mismatch_names_the_field(bp2_expected_shapes, bp2_tao_checkpoint):
    message = _mismatch(
        bp2_expected_shapes, bp2_tao_checkpoint, {r"gru04\.(small|large)_gru\.conv[zrq]\.": {0: 128}}
    )
    assert (
        "model.gru_hidden: checkpoint has 60, spec has 128 "
        "(update_block.gru04.small_gru.convz.weight [60,168,1,1] vs [128,168,1,1]; 12 tensors)"
    ) in message
    assert message.count("model.") == 1


def test_motion_encoder_width_mismatch_names_the_list_element(bp2_expected_shapes, bp2_tao_checkpoint):
    message = _mismatch(
        bp2_expected_shapes,
        bp2_tao_checkpoint,
        {r"encoder\.convc2\.": {0: 256}, r"encoder\.conv\.weight": {1: 268}},
    )
    assert "model.motion_encoder_widths[1]: checkpoint has 96, spec has 256" in message
    assert "update_block.encoder.convc2.weight [96,56,3,3] vs [256,56,3,3]; 2 tensors" in message
    # The 108 -> 268 input width is a sum of two fields: reported, but not blamed on one field.
    assert "1 more tensors with derived shapes (e.g. update_block.encoder.conv.weight [48,108,3,3]" in message


def test_volume_dim_mismatch(bp2_expected_shapes, bp2_tao_checkpoint):
    message = _mismatch(
        bp2_expected_shapes,
        bp2_tao_checkpoint,
        {r"^corr_feature_att\.0\.(conv|norm)\.": {0: 32}, r"^classifier\.0\.weight": {1: 32}},
    )
    assert message.startswith("checkpoint does not fit the network: model.volume_dim: checkpoint has 28, spec has 32")
    assert "corr_feature_att.0.conv.weight [28,32,3,3,3] vs [32,32,3,3,3]" in message


def test_two_fields_disagreeing_are_both_named(bp2_expected_shapes, bp2_tao_checkpoint):
    message = _mismatch(
        bp2_expected_shapes,
        bp2_tao_checkpoint,
        {r"disp_head\.conv\.2\.pwconv1\.": {0: 512}, r"disp_head\.conv\.2\.pwconv2\.weight": {1: 512},
         r"^cam\.fc\.0\.weight": {0: 16}, r"^cam\.fc\.2\.weight": {1: 16}},
    )
    assert "model.disp_head_pwconv1_widths[0]: checkpoint has 212, spec has 512" in message
    assert "(update_block.disp_head.conv.2.pwconv1.weight [212,36] vs [512,36]; 3 tensors)" in message
    assert "model.cam_mid_channels: checkpoint has 8, spec has 16 (cam.fc.0.weight [8,48,1,1] vs [16,48,1,1]; 2" \
        in message


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        ({r"^stem_2\.0\.conv\.weight": {0: 32}, r"^stem_2\.1\.weight": {1: 32}},
         "model.stem_2_widths[0]: checkpoint has 12, spec has 32"),
        ({r"^update_block\.mask\.0\.": {0: 64}, r"^update_block\.mask\.2\.weight": {1: 64}},
         "model.mask_widths[0]: checkpoint has 32, spec has 64"),
        ({r"^cnet\.conv04\.1\.": {0: 128}, r"^cam\.fc\.0\.weight": {1: 128}, r"^cam\.fc\.2\.weight": {0: 128}},
         "model.cnet_conv04_widths[1]: checkpoint has 48, spec has 128"),
        ({r"gru04\.conv0\.0\.": {0: 384}}, "model.gru_gating_conv_widths[0]: checkpoint has 100, spec has 384"),
        ({r"^spx_gru\.0\.weight": {0: 64}}, "model.spx_2_gru_widths[3]: checkpoint has 24, spec has 64"),
    ],
)
def test_more_width_fields(bp2_expected_shapes, bp2_tao_checkpoint, edits, expected):
    assert expected in _mismatch(bp2_expected_shapes, bp2_tao_checkpoint, edits)


def test_vit_width_is_reported_as_the_encoder_name():
    checkpoint = {"pretrained.cls_token": torch.zeros(1, 1, 384), "pretrained.norm.weight": torch.zeros(384)}
    expected = {"pretrained.cls_token": (1, 1, 1024), "pretrained.norm.weight": (1024,)}
    with pytest.raises(CheckpointMismatchError, match=r"model\.encoder: checkpoint has vits, spec has vitl"):
        plan_load(expected, checkpoint)


def test_unknown_tensor_falls_back_to_the_raw_shapes():
    with pytest.raises(CheckpointMismatchError, match=r"shape mismatch: head\.w \[3,4\] vs \[5,4\]"):
        plan_load({"head.w": (5, 4)}, {"head.w": torch.zeros(3, 4)})


# ---- load_into on real modules ----------------------------------------------------------------------


class _Small(nn.Module):
    """A hand-made stand-in: a classifier, a constant dx buffer, and no context_zqr_convs."""

    def __init__(self) -> None:
        super().__init__()
        self.classifier = nn.Sequential(nn.Conv3d(4, 1, 3))
        self.register_buffer("dx", torch.arange(-4, 5, dtype=torch.int8).view(1, 1, 9, 1))


def test_load_into_small_module_copies_values_and_logs_the_drop(caplog):
    model = _Small()
    weight = torch.randn(1, 4, 3, 3, 3)
    checkpoint = {
        "classifier.0.weight": weight,
        "classifier.0.bias": torch.tensor([0.25]),
        "context_zqr_convs.0.weight": torch.zeros(6, 2, 3, 3),
        "context_zqr_convs.0.bias": torch.zeros(6),
    }
    with caplog.at_level(logging.INFO, logger="skillbank.runtime.checkpoints.load_into"):
        report = load_into(model, checkpoint)
    assert torch.equal(model.classifier[0].weight, weight)
    assert model.classifier[0].bias.item() == 0.25
    assert report.dropped == ("context_zqr_convs.0.weight", "context_zqr_convs.0.bias")
    assert report.dropped_parameters == 6 * 2 * 9 + 6
    assert report.kept_from_model == ("dx",)
    assert torch.equal(model.dx.flatten(), torch.arange(-4, 5, dtype=torch.int8))
    assert [r.getMessage() for r in caplog.records] == [
        "checkpoint: dropped 2 never-run tensors (114 parameters) from context_zqr_convs (114)"
    ]


def test_load_into_names_the_model_class_on_mismatch():
    with pytest.raises(CheckpointMismatchError, match="does not fit the _Small: .*unexpected tensors"):
        load_into(_Small(), {"classifier.0.weight": torch.zeros(1, 4, 3, 3, 3),
                             "classifier.0.bias": torch.zeros(1), "head.x": torch.zeros(1)})


# ---- against the real FastFoundationStereo ----------------------------------------------------------

ffs = pytest.importorskip("skillbank.runtime.networks.ffs.model")
model_spec = pytest.importorskip("skillbank.specs.model")


def _ffs(**overrides):
    fields = {"model_type": "FastFoundationStereo", **model_spec.FFS_BP2_MODEL, **model_spec.FFS_BP2_WIDTHS}
    fields.update(overrides)
    return ffs.FastFoundationStereo(types.SimpleNamespace(**fields))


@pytest.mark.slow
def test_real_ffs_loads_a_tao_checkpoint_and_an_upstream_named_one(bp2_upstream_checkpoint, bp2_tao_checkpoint):
    torch.manual_seed(1)
    tao = {"model." + k: torch.randn(v.shape).to(v.dtype) if v.is_floating_point() else v
           for k, v in bp2_tao_checkpoint.items()}
    state_dict, _ = normalise_keys(tao)
    model = _ffs()
    report = load_into(model, state_dict)
    assert report.dropped_parameters == CONTEXT_ZQR_PARAMS + COST_AGG_LEFTOVER_PARAMS
    assert torch.equal(model.state_dict()["update_block.gru04.small_gru.convz.weight"],
                       state_dict["update_block.gru04.small_gru.convz.weight"])

    upstream, _ = normalise_keys(bp2_upstream_checkpoint)
    assert load_into(_ffs(), upstream).kept_from_model == ("dx",)


def test_real_ffs_with_another_gru_hidden_reports_the_field(bp2_tao_checkpoint):
    model = _ffs(gru_hidden=128, cnet_conv04_widths=[128, 48], disp_head_input_dim=128)
    with pytest.raises(CheckpointMismatchError) as info:
        load_into(model, bp2_tao_checkpoint)
    message = str(info.value)
    assert "does not fit the FastFoundationStereo" in message
    assert "model.gru_hidden: checkpoint has 60, spec has 128 (update_block.gru04.small_gru.convz.weight" in message
    assert "model.cnet_conv04_widths[0]: checkpoint has 60, spec has 128" in message


@pytest.mark.slow
def test_upstream_whole_module_pickle_into_the_real_ffs(upstream_ffs_pickle):
    from skillbank.runtime.checkpoints import CheckpointKind, load_checkpoint_file

    path, by_tao = upstream_ffs_pickle
    state_dict, meta = load_checkpoint_file(path)
    assert meta.kind is CheckpointKind.PICKLED_MODULE and meta.loader == "restricted"
    assert meta.root_class == "core.foundation_stereo.UpstreamNode"
    assert len(state_dict) == 721 and meta.keys_renamed > 300

    model = _ffs()
    dx_before = model.dx.clone()
    report = load_into(model, state_dict)
    assert report.dropped_parameters == CONTEXT_ZQR_PARAMS + COST_AGG_LEFTOVER_PARAMS
    assert report.kept_from_model == ("dx",)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], by_tao[k]) for k in loaded if k != "dx")
    assert torch.equal(model.dx, dx_before)


# ---- against the real FoundationStereo (teacher) ------------------------------------------------------


@pytest.fixture(scope="module")
def fs_vits_state():
    fs = pytest.importorskip("skillbank.runtime.networks.foundation_stereo.model")
    model = fs.FoundationStereo(types.SimpleNamespace(model_type="FoundationStereo", encoder="vits"))
    return {k: v for k, v in model.state_dict().items()}


def test_fs_keys_survive_normalisation_and_keep_their_never_run_modules(fs_vits_state):
    from skillbank.runtime.checkpoints import upstream_to_tao_key

    assert [upstream_to_tao_key(k) for k in fs_vits_state] == list(fs_vits_state)  # incl. DINOv2 mlp.fc1
    assert any(".mlp.fc1." in k for k in fs_vits_state)
    shapes = {k: tuple(v.shape) for k, v in fs_vits_state.items()}
    lightning_keys, _ = normalise_keys({"model." + k: v for k, v in fs_vits_state.items()})
    assert list(lightning_keys) == list(fs_vits_state)
    report = plan_load(shapes, lightning_keys).report
    assert report.dropped == () and "context_zqr_convs.0.weight" in report.loaded


def test_fs_classifier_and_encoder_mismatches(fs_vits_state):
    shapes = {k: tuple(v.shape) for k, v in fs_vits_state.items()}
    checkpoint = dict(fs_vits_state)
    for key in ("classifier.0.conv.weight", "classifier.0.norm.weight"):
        checkpoint[key] = torch.zeros((16, *shapes[key][1:]))
    checkpoint["feature.dino.depth_anything.pretrained.cls_token"] = torch.zeros(1, 1, 768)
    with pytest.raises(CheckpointMismatchError) as info:
        plan_load(shapes, checkpoint)
    message = str(info.value)
    assert "model.classifier_mid: checkpoint has 16, spec has 14 (classifier.0.conv.weight [16,28,3,3,3]" in message
    assert "model.encoder: checkpoint has vitb, spec has vits" in message
