"""channel_padding.pad_channels_: the pruned widths rounded up to multiples of 8 without changing the output.

The padded network must give the unpadded network's disparity (fp32 rounding only), with random
BatchNorm statistics and affine parameters (so a wrongly padded norm would show), before and after
BatchNorm folding, for the bp2 widths and for other odd widths; every widened convolution must
really be aligned afterwards.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from ffs_configs import BP2, TINY, config
from torch import nn

from skillbank.runtime.networks.common.cost_volume import build_lookup_tables, sample_lookup
from skillbank.runtime.networks.common.disparity_attention import heads_attention
from skillbank.runtime.networks.factory import build_network
from skillbank.runtime.networks.speed.channel_padding import ChannelWindow, pad_channels_, widen_conv_
from skillbank.runtime.networks.speed.fold_batchnorm import fold_batchnorm_

# odd everywhere: volume 20 (-> 24), hidden 30 (-> 32), gating 37/50, head 18, stem 6, ...
ODD = dict(
    TINY, volume_dim=20, motion_encoder_widths=[14, 18, 6, 5], motion_encoder_final=11, gru_hidden=30,
    gru_gating_conv_widths=[37, 50], disp_head_input_dim=30, disp_head_intermediate=18,
    disp_head_pwconv1_widths=[26, 33], mask_widths=[10, 7], stem_2_widths=[6, 9],
    spx_2_gru_widths=[7, 5, 9, 11], cnet_conv04_widths=[30, 13], cam_mid_channels=3,
)


def _randomised(cfg) -> nn.Module:  # noqa: ANN001
    torch.manual_seed(0)
    model = build_network(cfg)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
        if isinstance(m, nn.Conv2d) and m.bias is not None:   # nonzero biases everywhere they exist
            m.bias.data.uniform_(-0.1, 0.1)
    return model.eval()


def _pair(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    left = torch.randn(1, 3, h, w, generator=g)
    return left, torch.roll(left, -3, dims=3) + 0.05 * torch.randn(1, 3, h, w, generator=g)


def _convs(model: nn.Module):  # noqa: ANN202
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d,
                                                                          nn.ConvTranspose3d, nn.Linear))]


@pytest.mark.parametrize(("base", "size", "heads"), [
    pytest.param(BP2, (32, 64), True, id="heads-bp2"),
    pytest.param(ODD, (64, 96), True, id="heads-odd-widths", marks=pytest.mark.slow),
    pytest.param(BP2, (32, 64), False, id="no-heads-bp2", marks=pytest.mark.slow),
    pytest.param(ODD, (64, 96), False, id="no-heads-odd-widths", marks=pytest.mark.slow),
])
def test_padded_network_gives_the_same_disparity(base, size, heads):  # noqa: ANN001
    model = _randomised(config(base))
    left, right = _pair(*size)
    with torch.no_grad():
        ref = model(left, right, iters=3, test_mode=True)
        padded = pad_channels_(copy.deepcopy(model), heads=heads)
        out = padded(left, right, iters=3, test_mode=True)
        folded = fold_batchnorm_(padded)(left, right, iters=3, test_mode=True)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=2e-4)
    torch.testing.assert_close(folded, ref, rtol=1e-5, atol=2e-4)

    # what was odd before is aligned now, outside the parts that keep their widths on purpose
    keep = ("feature.", "cam.", "sam.", "cost_agg.post8_to_4.upsample.1.inner.")   # LayerNorm-ed / attention
    keep_exact = {"proj_cmb", "cnet.conv04.1.conv", "update_block.encoder.conv",
                  "corr_feature_att.2.feat_att.0.conv"}    # inputs of cat()s that are padded as a whole
    single = {"classifier.0", "update_block.disp_head.conv.4", "spx_gru.0"}
    for name, m in _convs(padded):
        if name.startswith(keep) or name in keep_exact or (not heads and name in single):
            continue
        out_ch = m.out_features if isinstance(m, nn.Linear) else m.out_channels
        assert out_ch % 8 == 0, (name, m)
    assert padded.update_block.encoder.convc1.in_channels % 8 == 0
    assert padded.update_block.gru04.conv0[0].in_channels % 8 == 0


def test_aligned_widths_stay_as_they_are():
    aligned = config(TINY, disp_head_intermediate=16, disp_head_pwconv1_widths=[24, 24], mask_widths=[16, 8],
                     spx_2_gru_widths=[8, 8, 8, 16], motion_encoder_final=11)   # GRU input 12 + 11 + 1 = 24
    model = _randomised(aligned)
    before = {k: v.shape for k, v in model.state_dict().items()}
    pad_channels_(model, heads=False)
    after = {k: v.shape for k, v in model.state_dict().items()}
    changed = {k for k in before if after[k] != before[k]}
    # the lookup's 162 channels -> 168 and the disparity's 1 -> 8: inputs, not widths of the network
    assert changed == {"update_block.encoder.convc1.weight", "update_block.encoder.convd1.weight"}
    assert after["update_block.encoder.convc1.weight"][1] == 168
    assert after["update_block.encoder.convd1.weight"][1] == 8
    assert model.context_pad == 0 and model.lookup_pad == 6


def test_padding_refuses_training_mode_a_second_pass_and_other_networks():
    model = _randomised(config(BP2))
    with pytest.raises(ValueError, match="inference transform"):
        pad_channels_(model.train())
    pad_channels_(model.eval())
    with pytest.raises(ValueError, match="already padded"):
        pad_channels_(model)
    with pytest.raises(TypeError, match="FastFoundationStereo"):
        pad_channels_(nn.Conv2d(3, 3, 1))


def test_widen_conv_maps_concatenated_segments():
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 3, 3, padding=1)            # input = cat([a (2), b (3)])
    a, b = torch.randn(1, 2, 6, 6), torch.randn(1, 3, 6, 6)
    ref = conv(torch.cat([a, b], 1))
    widen_conv_(conv, inputs=[(2, 8), (3, 8)], outputs=[(3, 8)])
    out = conv(torch.cat([F.pad(a, (0, 0, 0, 0, 0, 6)), F.pad(b, (0, 0, 0, 0, 0, 5))], 1))
    assert conv.weight.shape == (8, 16, 3, 3)
    torch.testing.assert_close(out[:, :3], ref)
    assert out[:, 3:].abs().max() == 0


def test_channel_window_runs_inner_on_real_channels_and_pads_zeros():
    inner = nn.Conv3d(3, 3, 1)
    window = ChannelWindow(inner, 3, 8)
    x = torch.randn(1, 8, 2, 3, 4)
    y = window(x)
    assert y.shape == (1, 8, 2, 3, 4)
    torch.testing.assert_close(y[:, :3], inner(x[:, :3]))
    assert y[:, 3:].abs().max() == 0


def test_heads_attention_equals_sdpa_with_gradients():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(6, 5, 4, 7, dtype=torch.float64, generator=g, requires_grad=True) for _ in range(3))
    ours = heads_attention(q, k, v)
    ref = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(ours, ref)
    grads = torch.autograd.grad(ours.square().sum(), (q, k, v))
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b)
    half = heads_attention(q.detach().bfloat16(), k.detach().bfloat16(), v.detach().bfloat16())
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.double(), ref.detach(), atol=0.05, rtol=0.02)


def test_lookup_pad_channels_appends_zeros():
    g = torch.Generator().manual_seed(0)
    left, right = torch.randn(1, 4, 3, 8, generator=g), torch.randn(1, 4, 3, 8, generator=g)
    tables = build_lookup_tables(left, right, torch.randn(1, 5, 6, 3, 8, generator=g), 2, 2)
    disp = 3 * torch.rand(1, 1, 3, 8, generator=g)
    plain = sample_lookup(tables, disp)
    padded = sample_lookup(tables, disp, pad_channels=6)
    assert plain.shape[1] == 2 * (5 * 5 + 5) and padded.shape[1] == plain.shape[1] + 6
    torch.testing.assert_close(padded[:, :plain.shape[1]], plain)
    assert padded[:, plain.shape[1]:].abs().max() == 0


def _padding_entries(t: torch.Tensor, m) -> torch.Tensor:  # noqa: ANN001
    """The entries of padded ``t`` that are not the original's."""
    keep = torch.ones(t.numel(), dtype=torch.bool)
    keep[m.positions] = False
    return t.reshape(-1)[keep]


@pytest.mark.parametrize("base", [pytest.param(BP2, marks=pytest.mark.slow), ODD], ids=["bp2", "odd-widths"])
def test_training_padding_keeps_the_state_dict_contract(base):  # noqa: ANN001
    """``training=True``: state_dict() gives the original keys, shapes and values; load_state_dict takes
    them (and leaves the padding's fill in place); unpad_tensor / pad_tensor invert each other."""
    from skillbank.runtime.networks.speed.channel_padding import pad_tensor, unpad_tensor

    original = _randomised(config(base)).train()
    reference = {k: v.clone() for k, v in original.state_dict().items()}
    padded = pad_channels_(copy.deepcopy(original), training=True)
    assert padded.padding_maps and any(".inner." in name for name in padded.padding_maps)
    state = padded.state_dict()
    assert set(state) == set(reference)
    for key, value in reference.items():
        assert torch.equal(state[key], value), key
    shifted = {k: v + 1 if v.is_floating_point() else v for k, v in reference.items()}
    padded.load_state_dict(shifted)
    for key, value in padded.state_dict().items():
        assert torch.equal(value, shifted[key]), key
    tensors = dict(padded.named_parameters())
    for name, m in padded.padding_maps.items():
        if name in tensors:
            t = tensors[name].detach()
            assert torch.equal(pad_tensor(unpad_tensor(t, m), m, t), t), name
            assert not _padding_entries(t, m).any(), f"{name}: padding not zero"


@pytest.mark.slow
def test_padded_weights_stay_zero_while_training():
    """Every padded weight gets an exact zero gradient, so SGD and AdamW (with weight decay) keep it
    at 0, and the padded network follows the unpadded one's losses within ten times the spread that a
    change of thread count causes, or 1e-4 (SGD at a small rate: this random network amplifies
    rounding, at lr 1e-4 the thread count alone moves the third loss by 4%; AdamW would turn the
    rounding noise of the zero-in-theory gradients of conv biases before BatchNorm into full-size
    steps)."""
    from skillbank.runtime.training.loss import stereo_loss_fn

    original = _randomised(config(ODD)).train()
    for m in original.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    left, right = _pair(64, 96)
    gt, valid = torch.full((1, 1, 64, 96), 3.0), torch.ones(1, 1, 64, 96, dtype=torch.bool)
    loss_fn = stereo_loss_fn(2, 64)

    def train(model: nn.Module, optimizer: type) -> list[float]:
        opt = optimizer(model.parameters(), lr=1e-6, weight_decay=0.05)
        losses = []
        for _ in range(3):
            loss = loss_fn(model, left, right, gt, valid)
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(float(loss))
        return losses

    reference = train(copy.deepcopy(original), torch.optim.SGD)
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)   # other kernels, other rounding: the noise floor
    try:
        again = train(copy.deepcopy(original), torch.optim.SGD)
    finally:
        torch.set_num_threads(threads)
    noise = max(abs(a - b) / b for a, b in zip(again, reference, strict=True))
    for optimizer in (torch.optim.SGD, torch.optim.AdamW):
        padded = pad_channels_(copy.deepcopy(original), training=True)
        losses = train(padded, optimizer)
        if optimizer is torch.optim.SGD:
            assert losses == pytest.approx(reference, rel=max(10 * noise, 1e-4)), (losses, reference, again)
        for name, param in padded.named_parameters():
            if name in padded.padding_maps:
                assert not _padding_entries(param.detach(), padded.padding_maps[name]).any(), (optimizer, name)
