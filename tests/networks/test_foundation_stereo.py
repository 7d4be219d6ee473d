"""FoundationStereo: forward contract, attention layouts, frozen ViT, widths and checkpoint key layout."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from skillbank.runtime.networks.common.disparity_attention import DisparityMultiheadAttention
from skillbank.runtime.networks.depth_anything.model import DepthAnythingV2
from skillbank.runtime.networks.factory import build_network
from skillbank.runtime.networks.foundation_stereo.features import vit_input_size
from skillbank.runtime.networks.foundation_stereo.model import FoundationStereo

MANIFEST = Path(__file__).resolve().parents[1] / "checkpoints" / "data" / "ffs_bp2_state_dict.tsv"
BP2_WIDTHS = {
    "motion_encoder_widths": [56, 96, 16, 12], "motion_encoder_final": 48, "gru_hidden": 60,
    "gru_gating_conv_widths": [100, 168], "disp_head_input_dim": 60, "disp_head_intermediate": 36,
    "disp_head_pwconv1_widths": [212, 244], "mask_widths": [32, 16], "stem_2_widths": [12, 16],
    "spx_2_gru_widths": [16, 12, 16, 24], "spx_gru_out": 9, "classifier_mid": 14,
    "cnet_conv04_widths": [60, 48], "cam_mid_channels": 8, "cost_agg_conv_patch_padding": [0, 0, 0],
}


def _cfg(**overrides) -> SimpleNamespace:
    base = dict(
        model_type="FoundationStereo", encoder="vits", hidden_dims=[128, 128, 128], n_gru_layers=3,
        max_disparity=64, volume_dim=28, cv_group=8, corr_radius=4, corr_levels=2, n_downsample=2,
        train_iters=3, valid_iters=2, disparity_attention_layout="heads",
        stereo_backbone=SimpleNamespace(depth_anything_v2_pretrained_path=None, edgenext_pretrained_path=None,
                                        use_bn=False, use_clstoken=False),
    )
    base.update(overrides)
    return SimpleNamespace(**base)


def _pair(h: int = 64, w: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    left = torch.randn(1, 3, h, w, generator=g)
    right = torch.roll(left, shifts=-3, dims=-1) + 0.05 * torch.randn(1, 3, h, w, generator=g)
    return left, right


@pytest.fixture(scope="module")
def net() -> FoundationStereo:
    torch.manual_seed(0)
    return FoundationStereo(_cfg())


@pytest.mark.parametrize("hw", [(64, 96), (60, 90)])
def test_test_mode_full_res_non_negative(net: FoundationStereo, hw: tuple[int, int]) -> None:
    left, right = _pair(*hw)
    with torch.no_grad():
        disp = net.eval()(left, right, iters=2, test_mode=True)
    assert disp.shape == (1, 1, *hw)
    assert torch.isfinite(disp).all() and (disp >= 0).all()


def test_train_mode_returns_init_and_one_prediction_per_iteration(net: FoundationStereo) -> None:
    left, right = _pair(60, 90)
    net.train()
    init_disp, preds = net(left, right)  # train_iters (3) by default
    assert init_disp.shape == (1, 1, 15, 23) and len(preds) == 3      # TAO: 1/4 resolution, ceil(90 / 4)
    assert all(p.shape == (1, 1, 60, 90) and torch.isfinite(p).all() for p in preds)
    # Soft-argmin over D = 16 levels at 1/4, in 1/4-resolution pixels: inside [0, 15].
    assert init_disp.min() >= 0 and init_disp.max() <= 15 + 1e-4
    _, preds2 = net(left, right, iters=2)
    assert len(preds2) == 2
    with pytest.raises(ValueError, match="iters"):
        net(left, right, iters=0)


def test_attention_layouts_differ_but_are_finite(net: FoundationStereo) -> None:
    tokens = FoundationStereo(_cfg(disparity_attention_layout="tokens"))
    tokens.load_state_dict(net.state_dict())  # same names and shapes in both layouts
    left, right = _pair()
    with torch.no_grad():
        a = net.eval()(left, right, iters=2, test_mode=True)
        b = tokens.eval()(left, right, iters=2, test_mode=True)
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    assert (a - b).abs().max() > 1e-4


def test_heads_layout_never_mixes_disparity_tokens() -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 6, 8)
    bumped = x.clone()
    bumped[:, 2] += 1.0
    for layout, mixes in (("heads", False), ("tokens", True)):
        attn = DisparityMultiheadAttention(8, 4, layout)
        with torch.no_grad():
            changed = (attn(x) - attn(bumped)).abs().amax(dim=(0, 2)) > 1e-6
        assert changed[2]
        assert bool(changed[[0, 1, 3, 4, 5]].any()) is mixes, layout


def test_vit_is_frozen_and_the_rest_trains(net: FoundationStereo) -> None:
    dino = net.feature.dino
    assert all(not p.requires_grad for p in dino.parameters())
    assert all(p.requires_grad for n, p in net.named_parameters() if not n.startswith("feature.dino."))
    net.train()
    assert not dino.training and net.feature.stages.training
    net.zero_grad()
    init_disp, preds = net(*_pair(), iters=2)
    (init_disp.mean() + sum(p.mean() for p in preds)).backward()
    assert all(p.grad is None for p in dino.parameters())
    for name in ("feature.stages.2.0.pwconv1.weight", "feature.conv4.0.conv.weight", "cnet.conv2.conv.weight",
                 "cost_agg.atts.cost_vol_disp.sa.0.self_attn.q_proj.weight", "classifier.2.weight",
                 "update_block.gru04.conv0.0.weight", "update_block.gru16.conv1.0.weight", "spx_gru.0.weight"):
        grad = net.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_vit_weights_load_from_a_local_depth_anything_file(tmp_path: Path) -> None:
    torch.manual_seed(2)
    da = DepthAnythingV2.from_encoder("vits")
    path = tmp_path / "depth_anything_v2_vits.pth"
    torch.save(da.state_dict(), path)
    cfg = _cfg()
    cfg.stereo_backbone.depth_anything_v2_pretrained_path = str(path)
    fs = FoundationStereo(cfg)
    loaded = fs.feature.dino.depth_anything.state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in da.state_dict().items())
    cfg.stereo_backbone.depth_anything_v2_pretrained_path = str(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="depth_anything_v2_pretrained_path"):
        FoundationStereo(cfg)


def test_vitl_teacher_key_names_and_size() -> None:
    with torch.device("meta"):
        fs = FoundationStereo(_cfg(encoder="vitl", max_disparity=416))
    sd = {k: tuple(v.shape) for k, v in fs.state_dict().items()}
    expected = {
        "feature.dino.depth_anything.pretrained.blocks.23.ls2.gamma": (1024,),
        "feature.dino.depth_anything.depth_head.scratch.output_conv1.weight": (128, 256, 3, 3),
        "feature.deconv8_4.conv1.conv.weight": (192, 48, 4, 4),
        "feature.conv4.0.conv.weight": (224, 224, 3, 3),
        "feature.conv4.2.conv2.bias": (224,),
        "cnet.conv2.conv.weight": (128, 256, 3, 3),
        "cnet.layer2.0.norm3.weight": (96,),
        "cnet.layer2.0.downsample.1.weight": (96,),
        "cnet.outputs16.1.weight": (128, 128, 3, 3),
        "update_block.encoder.convc1.weight": (256, 522, 1, 1),
        "update_block.encoder.conv.weight": (127, 320, 3, 3),
        "update_block.gru04.conv0.0.weight": (384, 384, 3, 3),
        "update_block.gru04.conv1.0.weight": (512, 512, 3, 3),
        "update_block.gru08.conv0.0.weight": (384, 384, 3, 3),
        "update_block.gru16.small_gru.convq.weight": (128, 384, 1, 1),
        "update_block.disp_head.conv.2.pwconv1.weight": (512, 128),
        "update_block.mask.2.weight": (32, 64, 3, 3),
        "cam.fc.0.weight": (8, 128, 1, 1),
        "corr_stem.0.weight": (28, 32, 1, 1, 1),
        "corr_stem.2.bn1.running_var": (28,),
        "cost_agg.conv3.1.conv2.0.weight": (168, 168, 17, 1, 1),
        "cost_agg.atts.cost_vol_disp.sa.3.linear1.weight": (28, 28),
        "classifier.0.conv.weight": (14, 28, 3, 3, 3),
        "classifier.2.weight": (1, 14, 7, 7, 7),
        "stem_2.1.weight": (32, 32, 3, 3),
        "spx_2_gru.conv2.conv.weight": (64, 64, 3, 3),
        "spx_gru.0.weight": (64, 9, 4, 4),
    }
    for key, shape in expected.items():
        assert sd.get(key) == shape, f"{key}: {sd.get(key)} != {shape}"
    total = sum(p.numel() for p in fs.parameters())
    frozen = sum(p.numel() for p in fs.feature.dino.parameters())
    assert math.isclose(total / 1e6, 374.5, abs_tol=0.1)  # FS ViT-L: 374.5 M
    assert math.isclose(frozen / 1e6, 335.3, abs_tol=0.1)


@pytest.mark.skipif(not MANIFEST.is_file(), reason="FFS bp2 tensor manifest not present")
def test_modules_shared_with_ffs_match_the_bp2_manifest() -> None:
    """FFS was distilled from FS and keeps FS's module tree where it was not searched/pruned: built with
    the bp2 widths, every FS tensor name that also appears in TAO's bp2 manifest has the same shape."""
    with torch.device("meta"):
        fs = FoundationStereo(_cfg(encoder="vitl", hidden_dims=[128], n_gru_layers=1, max_disparity=192,
                                   **BP2_WIDTHS))
    ours = {k: tuple(v.shape) for k, v in fs.state_dict().items()}
    with MANIFEST.open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    ref = {r["key"]: tuple(int(x) for x in r["shape"].split("x")) if r["shape"] not in ("", "scalar") else ()
           for r in rows}
    shared = [k for k in ref if k in ours]
    assert len(shared) >= 500
    assert [k for k in shared if ours[k] != ref[k]] == []
    ffs_only = ("cost_agg.post", "cost_agg.feature_att_8.layers", "cost_agg.feature_att_16.layers",
                "cnet.conv04", "corr_feature_att.", "classifier.0", "feature.conv4", "dx")
    assert [k for k in ref if k not in ours and not k.startswith(ffs_only)] == []


def test_width_and_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="cnet_conv04_widths"):
        FoundationStereo(_cfg(gru_hidden=64, cnet_conv04_widths=[60, 48]))
    with pytest.raises(ValueError, match="disparity_attention_layout"):
        FoundationStereo(_cfg(disparity_attention_layout="rows"))
    with pytest.raises(ValueError, match="max_disparity"):
        FoundationStereo(_cfg(max_disparity=100))
    with pytest.raises(ValueError, match="encoder"):
        FoundationStereo(_cfg(encoder="vitg"))
    with pytest.raises(ValueError, match="hidden_dims"):
        FoundationStereo(_cfg(hidden_dims=[128, 96, 64]))


def test_custom_widths_build_and_run() -> None:
    torch.manual_seed(3)
    fs = FoundationStereo(_cfg(hidden_dims=[128], n_gru_layers=1, volume_dim=28, **BP2_WIDTHS)).eval()
    assert fs.update_block.gru04.conv0[0].weight.shape == (100, 97, 3, 3)
    with torch.no_grad():
        disp = fs(*_pair(), iters=2, test_mode=True)
    assert disp.shape == (1, 1, 64, 96) and (disp >= 0).all()


def test_vit_input_size_rounds_to_112_and_caps() -> None:
    assert vit_input_size(64, 96) == (112, 112)
    assert vit_input_size(480, 640) == (560, 672)
    h, w = vit_input_size(2000, 1000)
    assert h == 1344 and w % 112 == 0 and w < 1344


def test_factory_builds_foundation_stereo() -> None:
    with torch.device("meta"):
        assert isinstance(build_network(_cfg()), FoundationStereo)


def test_state_dict_names_are_the_loaders_target_layout(net: FoundationStereo) -> None:
    """Upstream FS checkpoints load through the checkpoint loader's upstream->TAO renames: our names must
    already be in that target form (a fixed point), or a renamed checkpoint would miss them."""
    from skillbank.runtime.checkpoints.renames import upstream_to_tao_key

    renamed = [k for k in net.state_dict() if upstream_to_tao_key(k) != k]
    assert renamed == []
    # and the upstream spellings of a few FS keys land on ours
    ours = net.state_dict()
    for upstream in ("cost_agg.atts.4.sa.0.self_attn.q_proj.weight", "cnet.conv2.bn.running_mean",
                     "feature.stem.0.weight", "feature.stages.1.downsample.1.weight",
                     "feature.stages.2.blocks.0.conv_dw.weight", "classifier.0.bn.weight"):
        assert upstream_to_tao_key(upstream) in ours, upstream


@pytest.mark.slow
def test_static_onnx_export_matches_pytorch(net: FoundationStereo) -> None:
    import io
    import warnings

    ort = pytest.importorskip("onnxruntime")

    class TestMode(torch.nn.Module):
        def __init__(self, model: FoundationStereo) -> None:
            super().__init__()
            self.model = model

        def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
            return self.model(left, right, iters=2, test_mode=True)

    left, right = _pair()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # eval wrapper: export restores the wrapper's mode afterwards
        torch.onnx.export(TestMode(net.eval()).eval(), (left, right), buf, opset_version=17, dynamo=False,
                          input_names=["left", "right"], output_names=["disparity"])
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"left": left.numpy(), "right": right.numpy()})[0]
    with torch.no_grad():
        ref = net.eval()(left, right, iters=2, test_mode=True).numpy()
    assert got.shape == ref.shape == (1, 1, 64, 96)
    assert abs(got - ref).max() < 1e-3
