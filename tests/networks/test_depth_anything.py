"""DepthAnythingV2 (DINOv2 ViT + DPT head): contract, bounds, upstream key names, gradients."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from skillbank.runtime.networks.depth_anything.dpt import DPT_CONFIGS
from skillbank.runtime.networks.depth_anything.model import DepthAnythingV2
from skillbank.runtime.networks.depth_anything.vit import DinoVisionTransformer, SwiGLUFFN, build_vit


def _cfg(encoder: str = "vits", use_bn: bool = False, use_clstoken: bool = False) -> SimpleNamespace:
    return SimpleNamespace(
        model_type="MetricDepthAnything",
        encoder=encoder,
        mono_backbone=SimpleNamespace(pretrained_path=None, use_bn=use_bn, use_clstoken=use_clstoken),
    )


@pytest.fixture(scope="module")
def metric_net() -> DepthAnythingV2:
    torch.manual_seed(0)
    return DepthAnythingV2(_cfg(), metric=True, max_depth=10.0).eval()


# Names and shapes read off upstream DepthAnythingV2 (vits: dim 384, 6 heads, 12 blocks, 518-px grid;
# DPT features 64, out_channels [48, 96, 192, 384]). ConvTranspose2d weights are (in, out, k, k).
UPSTREAM_VITS = {
    "pretrained.cls_token": (1, 1, 384),
    "pretrained.pos_embed": (1, 1370, 384),
    "pretrained.mask_token": (1, 384),
    "pretrained.patch_embed.proj.weight": (384, 3, 14, 14),
    "pretrained.patch_embed.proj.bias": (384,),
    "pretrained.blocks.0.norm1.weight": (384,),
    "pretrained.blocks.0.attn.qkv.weight": (1152, 384),
    "pretrained.blocks.0.attn.qkv.bias": (1152,),
    "pretrained.blocks.0.attn.proj.weight": (384, 384),
    "pretrained.blocks.0.ls1.gamma": (384,),
    "pretrained.blocks.11.norm2.bias": (384,),
    "pretrained.blocks.11.mlp.fc1.weight": (1536, 384),
    "pretrained.blocks.11.mlp.fc2.weight": (384, 1536),
    "pretrained.blocks.11.ls2.gamma": (384,),
    "pretrained.norm.weight": (384,),
    "depth_head.projects.0.weight": (48, 384, 1, 1),
    "depth_head.projects.3.weight": (384, 384, 1, 1),
    "depth_head.resize_layers.0.weight": (48, 48, 4, 4),
    "depth_head.resize_layers.1.weight": (96, 96, 2, 2),
    "depth_head.resize_layers.3.weight": (384, 384, 3, 3),
    "depth_head.scratch.layer1_rn.weight": (64, 48, 3, 3),
    "depth_head.scratch.layer4_rn.weight": (64, 384, 3, 3),
    "depth_head.scratch.refinenet1.out_conv.weight": (64, 64, 1, 1),
    "depth_head.scratch.refinenet4.resConfUnit1.conv1.weight": (64, 64, 3, 3),
    "depth_head.scratch.refinenet2.resConfUnit2.conv2.bias": (64,),
    "depth_head.scratch.output_conv1.weight": (32, 64, 3, 3),
    "depth_head.scratch.output_conv2.0.weight": (32, 32, 3, 3),
    "depth_head.scratch.output_conv2.2.weight": (1, 32, 1, 1),
}


def test_vits_state_dict_matches_upstream_names(metric_net: DepthAnythingV2) -> None:
    sd = metric_net.state_dict()
    for key, shape in UPSTREAM_VITS.items():
        assert key in sd, f"missing upstream key {key}"
        assert tuple(sd[key].shape) == shape, f"{key}: {tuple(sd[key].shape)} != {shape}"
    # cls/pos/mask tokens (3) + patch_embed (2) + 12 blocks x 14 + final norm (2); no BN/readout in the head.
    assert sum(k.startswith("pretrained.") for k in sd) == 3 + 2 + 12 * 14 + 2
    assert not any(".bn" in k or "readout" in k for k in sd)


def test_upstream_state_dict_loads_strict(metric_net: DepthAnythingV2) -> None:
    # A round trip through "module."-prefixed keys (a DDP checkpoint) must load strictly.
    other = DepthAnythingV2(_cfg(), metric=True, max_depth=10.0)
    other.load_upstream({f"module.{k}": v for k, v in metric_net.state_dict().items()})
    for k, v in other.state_dict().items():
        assert torch.equal(v, metric_net.state_dict()[k])


def test_pretrained_path_initialises_metric_from_relative_weights(tmp_path) -> None:
    torch.manual_seed(4)
    relative = DepthAnythingV2(_cfg(), metric=False)
    path = tmp_path / "depth_anything_v2_vits.pth"
    torch.save({"model": relative.state_dict()}, path)
    cfg = _cfg()
    cfg.mono_backbone.pretrained_path = str(path)
    metric = DepthAnythingV2(cfg, metric=True, max_depth=20.0)
    assert all(torch.equal(v, metric.state_dict()[k]) for k, v in relative.state_dict().items())
    cfg.mono_backbone.pretrained_path = str(tmp_path / "absent.pth")
    with pytest.raises(FileNotFoundError, match="mono_backbone.pretrained_path"):
        DepthAnythingV2(cfg, metric=True, max_depth=20.0)


def test_use_bn_and_clstoken_add_upstream_modules() -> None:
    net = DepthAnythingV2(_cfg(use_bn=True, use_clstoken=True), metric=False)
    sd = net.state_dict()
    assert sd["depth_head.readout_projects.0.0.weight"].shape == (384, 768)
    assert sd["depth_head.scratch.refinenet1.resConfUnit1.bn1.running_mean"].shape == (64,)
    out = net.eval()(torch.randn(1, 3, 28, 42))
    assert out.shape == (1, 1, 28, 42) and (out >= 0).all()


@pytest.mark.parametrize("hw", [(37, 51), (70, 98), (15, 29)])
def test_metric_shape_and_bounds_for_odd_sizes(metric_net: DepthAnythingV2, hw: tuple[int, int]) -> None:
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        depth = metric_net(x)
    assert depth.shape == (2, 1, *hw)
    assert torch.isfinite(depth).all()
    assert (depth > 0).all() and (depth <= 10.0).all()


def test_relative_is_non_negative_and_differs_from_metric() -> None:
    torch.manual_seed(1)
    rel = DepthAnythingV2(_cfg(), metric=False).eval()
    with torch.no_grad():
        out = rel(torch.randn(1, 3, 45, 61))
    assert out.shape == (1, 1, 45, 61)
    assert (out >= 0).all()
    assert isinstance(rel.depth_head.scratch.output_conv2[3], torch.nn.ReLU)


def test_metric_requires_max_depth() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        DepthAnythingV2(_cfg(), metric=True, max_depth=None)
    with pytest.raises(ValueError, match="encoder"):
        DepthAnythingV2(_cfg("vitx"), metric=False)


def test_backward_reaches_encoder_and_head() -> None:
    torch.manual_seed(2)
    net = DepthAnythingV2(_cfg(), metric=True, max_depth=5.0).train()
    net(torch.randn(1, 3, 42, 56)).mean().backward()
    names = ("pretrained.blocks.0.attn.qkv.weight", "pretrained.pos_embed", "depth_head.projects.0.weight")
    for name in names:
        grad = net.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_intermediate_layers_and_pos_embed_interpolation() -> None:
    torch.manual_seed(3)
    vit = DinoVisionTransformer(embed_dim=32, depth=4, num_heads=2, pretrain_grid=5).eval()
    x = torch.randn(2, 3, 3 * 14, 7 * 14)
    outs = vit.get_intermediate_layers(x, [1, 3], return_class_token=True)
    assert len(outs) == 2 and outs[0][0].shape == (2, 21, 32) and outs[0][1].shape == (2, 32)
    maps = vit.get_intermediate_layers(x, 2, reshape=True)
    assert maps[1].shape == (2, 32, 3, 7)
    # The last tapped block equals the full forward's normed tokens (class token slot).
    assert torch.allclose(outs[1][1], vit(x), atol=1e-6)
    # On the pre-training grid the embedding is used as is; elsewhere it is a bicubic resize.
    assert torch.equal(vit.interpolate_pos_encoding(5, 5, torch.float32), vit.pos_embed)
    pe = vit.interpolate_pos_encoding(3, 7, torch.float32)
    assert pe.shape == (1, 1 + 21, 32) and torch.equal(pe[:, 0], vit.pos_embed[:, 0])
    with pytest.raises(ValueError, match="multiple"):
        vit.get_intermediate_layers(torch.randn(1, 3, 30, 28))


def test_encoder_sizes_and_swiglu_widths() -> None:
    vitb = build_vit("vitb")
    assert len(vitb.blocks) == 12 and vitb.blocks[0].attn.num_heads == 12 and vitb.embed_dim == 768
    # ViT-g's fused SwiGLU: nominal hidden 4 * 1536 -> 2/3 rounded to 4096, w12 fuses two of them.
    ffn = SwiGLUFFN(1536, 4 * 1536)
    assert ffn.w12.weight.shape == (8192, 1536) and ffn.w3.weight.shape == (1536, 4096)
    assert DPT_CONFIGS["vitg"] == {"features": 384, "out_channels": [1536] * 4}


@pytest.mark.slow
def test_vitl_parameter_count() -> None:
    net = DepthAnythingV2(_cfg("vitl"), metric=False)
    n_vit = sum(p.numel() for p in net.pretrained.parameters())
    assert 303e6 < n_vit < 306e6  # DINOv2 ViT-L/14: ~304 M


def test_static_onnx_export_matches_pytorch(metric_net: DepthAnythingV2) -> None:
    """Static-size export (opset 17): the positional-embedding resize is baked in; onnxruntime agrees."""
    import io
    import warnings

    ort = pytest.importorskip("onnxruntime")
    x = torch.randn(1, 3, 70, 98)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(metric_net.eval(), (x,), buf, opset_version=17, dynamo=False,
                          input_names=["image"], output_names=["depth"])
    got = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})
    with torch.no_grad():
        ref = metric_net(x)
    assert got[0].shape == (1, 1, 70, 98)
    assert abs(got[0] - ref.numpy()).max() < 1e-4
