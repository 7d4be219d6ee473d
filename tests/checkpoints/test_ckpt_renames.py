"""Upstream -> TAO key renames, checked against every row of the bp2 manifest."""

from __future__ import annotations

import pytest
import torch

from skillbank.runtime.checkpoints import (
    CheckpointError,
    normalise_keys,
    strip_wrapper_prefixes,
    upstream_to_tao_key,
)


def test_every_upstream_manifest_key_maps_to_its_tao_key(manifest):
    pairs = [(r.upstream, r.key) for r in manifest if r.upstream is not None]
    assert len(pairs) == 721  # all rows but `dx`, which upstream's pickle may lack
    wrong = [(up, upstream_to_tao_key(up), tao) for up, tao in pairs if upstream_to_tao_key(up) != tao]
    assert wrong == []
    # The renames matter: a large share of the names differ upstream.
    assert sum(up != tao for up, tao in pairs) > 300


@pytest.mark.parametrize("prefix", ["", "model.", "module.", "model.module."])
def test_wrapper_prefixes_then_renames(manifest, prefix):
    for r in manifest:
        if r.upstream is not None:
            assert upstream_to_tao_key(strip_wrapper_prefixes(prefix + r.upstream)) == r.key


def test_renames_are_a_no_op_on_tao_names(manifest):
    assert [upstream_to_tao_key(r.key) for r in manifest] == [r.key for r in manifest]


@pytest.mark.parametrize(
    ("upstream", "tao"),
    [
        ("cost_agg.atts.4.sa.0.linear1.weight", "cost_agg.atts.cost_vol_disp.sa.0.linear1.weight"),
        ("corr_feature_att.layers.2.feat_att.0.bn.weight", "corr_feature_att.2.feat_att.0.norm.weight"),
        ("classifier.layers.0.bias", "classifier.0.bias"),
        ("feature.stem.1.weight", "feature.downsample_layers.0.1.weight"),
        ("feature.stages.3.downsample.1.weight", "feature.downsample_layers.3.1.weight"),
        ("feature.stages.2.blocks.7.mlp.fc2.bias", "feature.stages.2.7.pwconv2.bias"),
        ("update_block.disp_head.conv.3.conv_dw.weight", "update_block.disp_head.conv.3.dwconv.weight"),
        ("stem_2.0.IN.weight", "stem_2.0.norm.weight"),
        # Not renamed: feature_att_8 keeps its `.layers.`, bn1/bn2 are not conv-block norms.
        ("cost_agg.feature_att_8.layers.0.bn.weight", "cost_agg.feature_att_8.layers.0.norm.weight"),
        ("cost_agg.post8_to_4.out.1.bn1.weight", "cost_agg.post8_to_4.out.1.bn1.weight"),
        # The DINOv2 ViT's MLP names stay (FoundationStereo / DepthAnythingV2).
        ("feature.dino.pretrained.blocks.0.mlp.fc1.weight", "feature.dino.pretrained.blocks.0.mlp.fc1.weight"),
        ("pretrained.blocks.11.mlp.fc2.bias", "pretrained.blocks.11.mlp.fc2.bias"),
    ],
)
def test_single_renames(upstream, tao):
    assert upstream_to_tao_key(upstream) == tao


def test_normalise_keys_counts_changes_and_keeps_order():
    sd = {"model.feature.stem.0.weight": torch.zeros(1), "model.dx": torch.zeros(1)}
    out, changed = normalise_keys(sd)
    assert list(out) == ["feature.downsample_layers.0.0.weight", "dx"]
    assert changed == 2
    out, changed = normalise_keys(sd, rename=False)
    assert list(out) == ["feature.stem.0.weight", "dx"]


def test_two_names_for_one_tensor_is_an_error():
    sd = {"classifier.layers.0.weight": torch.zeros(1), "classifier.0.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match="both map to 'classifier.0.weight'"):
        normalise_keys(sd)


def test_depth_anything_v2_keys_are_left_alone():
    import types

    depth_anything = pytest.importorskip("skillbank.runtime.networks.depth_anything.model")
    model = depth_anything.DepthAnythingV2(
        types.SimpleNamespace(model_type="RelativeDepthAnything", encoder="vits", mono_backbone=None)
    )
    keys = list(model.state_dict())
    assert any(".mlp.fc1." in k for k in keys)
    assert [upstream_to_tao_key(strip_wrapper_prefixes(k)) for k in keys] == keys
