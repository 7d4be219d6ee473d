"""FastFoundationStereo end to end with tiny widths: shapes, sign, iterations, gradients, precision."""

from __future__ import annotations

import pytest
import torch
from ffs_configs import TINY, config

from skillbank.runtime.networks.factory import build_network
from skillbank.runtime.networks.ffs.model import ConfigError, FastFoundationStereo

H, W = 67, 93          # odd on purpose: padded to 96 x 96 inside, cropped back


def _pair(batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A synthetic pair: the right image is the left one shifted by 6 px, plus noise."""
    g = torch.Generator().manual_seed(seed)
    left = torch.randn(batch, 3, H, W + 6, generator=g)
    right = left[..., 6:] + 0.05 * torch.randn(batch, 3, H, W, generator=g)
    return left[..., :W].contiguous(), right.contiguous()


@pytest.fixture(scope="module")
def tiny() -> FastFoundationStereo:
    torch.manual_seed(0)
    return build_network(config(TINY)).eval()


def test_factory_builds_ffs_and_rejects_unknown_types(tiny):
    assert isinstance(tiny, FastFoundationStereo)
    with pytest.raises(ValueError, match="unknown model.model_type 'Nope'"):
        build_network(config(TINY, model_type="Nope"))


def test_test_mode_shape_and_sign_for_odd_sizes(tiny):
    left, right = _pair(batch=2)
    with torch.no_grad():
        disp = tiny(left, right, test_mode=True)
    assert disp.shape == (2, 1, H, W)
    assert torch.isfinite(disp).all() and (disp >= 0).all()
    assert disp.max() <= TINY["max_disparity"] + 1, "a soft-argmin plus small updates stays in range"


def test_train_mode_outputs(tiny):
    left, right = _pair()
    with torch.no_grad():
        init_disp, preds = tiny(left, right, iters=4)
    # TAO's train-mode contract: the soft-argmin at 1/4 resolution (ceil(H/4) x ceil(W/4)), in 1/4 pixels
    assert init_disp.shape == (1, 1, -(-H // 4), -(-W // 4)) and len(preds) == 4
    assert all(p.shape == (1, 1, H, W) and torch.isfinite(p).all() for p in preds)
    # the soft-argmin is an expectation over D = max_disparity / 4 levels
    assert init_disp.min() >= 0 and init_disp.max() <= TINY["max_disparity"] // 4 - 1


def test_iters_argument_and_defaults_are_honoured(tiny):
    left, right = _pair()
    with torch.no_grad():
        _, preds_default = tiny(left, right)
        one = tiny(left, right, iters=1, test_mode=True)
        three = tiny(left, right, test_mode=True)              # valid_iters = 3
        three_explicit = tiny(left, right, iters=3, test_mode=True)
        _, preds3 = tiny(left, right, iters=3)
    assert len(preds_default) == TINY["train_iters"]
    torch.testing.assert_close(three, three_explicit, atol=0, rtol=0)
    torch.testing.assert_close(three, preds3[-1].clamp(min=0), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(one, three), "more iterations must change the estimate"
    with pytest.raises(ValueError, match="iters must be >= 1"):
        tiny(left, right, iters=0)


def test_gradients_flow_and_initial_disparity_is_detached():
    torch.manual_seed(0)
    model = build_network(config(TINY)).train()
    left, right = _pair(batch=2)
    init_disp, preds = model(left, right, iters=2)
    sum(p.mean() for p in preds).backward(retain_graph=True)
    grads = {n: p.grad for n, p in model.named_parameters()}
    for name in ("feature.stages.0.0.pwconv1.weight", "cost_agg.post8_to_4.upsample.1.sa.0.linear1.weight",
                 "update_block.encoder.convc1.weight", "update_block.gru04.large_gru.convq.weight",
                 "spx_gru.0.weight", "stem_2.0.conv.weight", "cnet.conv04.0.conv.weight"):
        assert grads[name] is not None and grads[name].abs().sum() > 0, name
    assert grads["classifier.0.weight"] is None, "refinement starts from a detached initial disparity"
    model.zero_grad()
    init_disp.mean().backward()
    assert model.classifier[0].weight.grad.abs().sum() > 0, "the classifier learns through init_disp"


@pytest.mark.parametrize("dtype, mean_tol, max_tol", [(torch.bfloat16, 0.05, 0.25), (torch.float16, 0.01, 0.05)])
def test_autocast_agrees_with_fp32(tiny, dtype, mean_tol, max_tol):
    """Low-precision autocast on CPU vs fp32; measured: bf16 0.007 / 0.014 px, fp16 0.001 / 0.002 px."""
    left, right = _pair()
    with torch.no_grad():
        ref = tiny(left, right, test_mode=True)
        with torch.autocast("cpu", dtype=dtype):
            low = tiny(left, right, test_mode=True)
    assert low.dtype == torch.float32, "disparity comes back in fp32"
    diff = (low - ref).abs()
    assert diff.mean() < mean_tol and diff.max() < max_tol, (diff.mean().item(), diff.max().item())


def test_channels_last_gives_the_same_result():
    torch.manual_seed(0)
    model = build_network(config(TINY)).eval()
    left, right = _pair()
    with torch.no_grad():
        ref = model(left, right, test_mode=True)
        out = model.to_channels_last()(left, right, test_mode=True)
    torch.testing.assert_close(out, ref, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("override", [dict(disparity_attention_layout="tokens"), dict(gwc_feature_normalize=False)])
def test_switches_change_the_network(tiny, override):
    torch.manual_seed(0)
    other = build_network(config(TINY, **override)).eval()
    other.load_state_dict(tiny.state_dict())
    left, right = _pair()
    with torch.no_grad():
        a = tiny(left, right, test_mode=True)
        b = other(left, right, test_mode=True)
    assert a.shape == b.shape and not torch.allclose(a, b)


@pytest.mark.parametrize("override, message", [
    (dict(n_gru_layers=3), "n_gru_layers must be 1"),
    (dict(max_disparity=100), "multiple of 32"),
    (dict(mask_widths=[12, 6]), r"mask_widths\[1\] \(6\) must equal model.spx_2_gru_widths\[0\]"),
    (dict(cnet_conv04_widths=[10, 12]), "must equal model.gru_hidden"),
    (dict(motion_encoder_widths=[16, 16, 8]), "motion_encoder_widths must be 4 positive integers"),
    (dict(encoder="vitx"), "model.encoder must be one of"),
])
def test_bad_config_gives_a_clear_error(override, message):
    with pytest.raises(ConfigError, match=message):
        build_network(config(TINY, **override))


def test_bad_inputs_give_a_clear_error(tiny):
    left, right = _pair()
    with pytest.raises(ValueError, match=r"left image must be a \(B, 3, H, W\) tensor"):
        tiny(left[:, :1], right)
    with pytest.raises(ValueError, match="shapes differ"):
        tiny(left, right[..., :-1])
    with pytest.raises(ValueError, match="must be float"):
        tiny(left.to(torch.uint8), right.to(torch.uint8))


@pytest.mark.parametrize("test_mode", [True, False])
def test_forward_traces_as_one_graph(tiny, test_mode):
    """No data-dependent Python control flow and no host syncs (.item(), nonzero): TorchDynamo
    captures the whole forward in a single graph, which CUDA graphs / torch.compile need."""
    torch._dynamo.reset()
    left, right = _pair()
    explain = torch._dynamo.explain(lambda a, b: tiny(a, b, iters=2, test_mode=test_mode))(left, right)
    assert explain.graph_break_count == 0, [str(r) for r in explain.break_reasons]
    assert explain.graph_count == 1


def test_mixed_precision_flag_runs_bf16_inside(tiny):
    """``model.mixed_precision: true`` turns on bf16 autocast inside forward (no outer context)."""
    torch.manual_seed(0)
    mixed = build_network(config(TINY, mixed_precision=True)).eval()
    mixed.load_state_dict(tiny.state_dict())
    left, right = _pair()
    with torch.no_grad():
        ref = tiny(left, right, test_mode=True)
        out = mixed(left, right, test_mode=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outer = tiny(left, right, test_mode=True)
    torch.testing.assert_close(out, outer, atol=0, rtol=0)
    assert 0 < (out - ref).abs().max() < 0.25, "bf16 differs from fp32, within the bf16 tolerance"


def test_bf16_weights_run_without_autocast(tiny):
    """``model.to(torch.bfloat16)`` (no per-forward weight casts) takes fp32 images and returns
    fp32 disparity; measured vs fp32: mean 0.007 px, max 0.015 px."""
    torch.manual_seed(0)
    half = build_network(config(TINY)).eval()
    half.load_state_dict(tiny.state_dict())
    half = half.to(torch.bfloat16)
    left, right = _pair()
    with torch.no_grad():
        ref = tiny(left, right, test_mode=True)
        out = half(left, right, test_mode=True)
    assert out.dtype == torch.float32
    diff = (out - ref).abs()
    assert diff.mean() < 0.05 and diff.max() < 0.25, (diff.mean().item(), diff.max().item())


def test_batchnorm_folding_keeps_the_output(tiny):
    import copy

    from skillbank.runtime.networks.speed.fold_batchnorm import fold_batchnorm_

    model = copy.deepcopy(tiny)
    g = torch.Generator().manual_seed(3)
    for m in model.modules():          # non-trivial running statistics and affine parameters
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.weight.data.copy_(1 + 0.1 * torch.randn(m.num_features, generator=g))
    left, right = _pair()
    with torch.no_grad():
        ref = model(left, right, test_mode=True)
        fold_batchnorm_(model)
        out = model(left, right, test_mode=True)
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)) for m in model.modules())
    torch.testing.assert_close(out, ref, atol=1e-3, rtol=1e-4)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm_(copy.deepcopy(tiny).train())
