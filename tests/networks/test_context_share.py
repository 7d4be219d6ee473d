"""The GRU's first convolution's share of the context, computed once per forward: the update block
gives what it gave with the context concatenated into every iteration's input (float64), padded or not,
and the deferred weight gradients of that convolution equal autograd's."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from ffs_configs import TINY, config

from skillbank.runtime.networks.factory import build_network
from skillbank.runtime.networks.speed.channel_padding import pad_channels_
from skillbank.runtime.networks.speed.layer_ops import PLAIN


def _old_update(block, net, inp, corr, disp, att, context_pad):
    """The update with the context concatenated into the GRU input every iteration (as before)."""
    if context_pad:
        inp = F.pad(inp, (0, 0, 0, 0, 0, context_pad))
    motion = torch.cat([inp, block.encoder(disp, corr, PLAIN)], dim=1)
    gru = block.gru04
    x = F.relu(gru.conv0[0](motion))
    hx = F.relu(gru.conv1[0](torch.cat([x, net], dim=1)))
    net = torch.lerp(gru.large_gru(net, x, hx), gru.small_gru(net, x, hx), att)
    return net, block.disp_head(net)


@pytest.mark.parametrize("padded", [False, True])
def test_update_with_the_context_share_equals_the_concatenated_context(padded):
    torch.manual_seed(0)
    model = build_network(config(TINY)).double().eval()
    if padded:
        pad_channels_(model)
    block, pad = model.update_block, model.context_pad
    assert (pad > 0) == padded
    b, h, w = 2, 6, 9
    g = torch.Generator().manual_seed(3)
    inp = torch.randn(b, block.gru04.conv0[0].in_channels - pad - block.encoder.conv.out_channels - 1, h, w,
                      generator=g, dtype=torch.float64)
    net = torch.randn(b, block.gru04.small_gru.convz.out_channels, h, w, generator=g, dtype=torch.float64)
    corr = torch.randn(b, block.encoder.convc1.in_channels, h, w, generator=g, dtype=torch.float64)
    disp = torch.rand(b, 1, h, w, generator=g, dtype=torch.float64) * 8
    att = torch.rand(b, 1, h, w, generator=g, dtype=torch.float64)
    with torch.no_grad():
        ref = _old_update(block, net, inp, corr, disp, att, pad)
        got = block(net, block.context_share(inp), corr, disp, att, PLAIN, pad)
    for g_, r in zip(got, ref, strict=True):
        torch.testing.assert_close(g_, r, rtol=1e-12, atol=1e-12)


def test_the_share_gets_the_summed_gradient_of_every_iteration():
    """The context's gradient and conv0's weight gradient (its context part through autograd, the
    rest deferred) equal those of the concatenated form over three iterations."""
    torch.manual_seed(0)
    model = build_network(config(TINY)).double().train()
    model.deferred_weight_grads = True
    g = torch.Generator().manual_seed(1)
    left = torch.randn(1, 3, 64, 96, generator=g, dtype=torch.float64)
    right = torch.roll(left, -4, dims=3)
    outs = []
    for deferred in (False, True):
        m = copy.deepcopy(model)
        m.deferred_weight_grads = deferred
        torch.manual_seed(5)
        init, preds = m(left, right, iters=3)
        (init.mean() + sum(p.abs().mean() for p in preds)).backward()
        outs.append({n: p.grad for n, p in m.named_parameters() if p.grad is not None})
    conv0 = "update_block.gru04.conv0.0.weight"
    assert outs[0][conv0].abs().sum() > 0
    for name, grad in outs[1].items():
        torch.testing.assert_close(grad, outs[0][name], rtol=1e-6, atol=1e-9 * outs[0][name].abs().max().item())
