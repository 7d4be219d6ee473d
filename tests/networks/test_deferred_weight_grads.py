"""Deferred weight gradients: the refinement update's layers run tapped, their weight gradients are
computed per iteration outside the iteration's backward and summed by a sink node.

The network's outputs must not change and every parameter must get autograd's gradient (float64
here; the network's fp32 islands round the same way in both runs); frozen layers run plainly; the
forward without gradients or with the update frozen does not tap; a second backward
through the same forward raises instead of doubling the gradients. (GPU, side stream, compiled and
CUDA-graphed: ``tests/runtime/test_fast_paths.py -m gpu``.)
"""

from __future__ import annotations

import copy

import pytest
import torch
from ffs_configs import TINY, config
from torch import nn

from skillbank.runtime.networks.factory import build_network
from skillbank.runtime.networks.speed import deferred_weight_grads
from skillbank.runtime.networks.speed.deferred_weight_grads import DeferredWeightGrads, weight_grads
from skillbank.runtime.networks.speed.layer_ops import PLAIN, TappedOps, fused_key, skipped_key, tapped_layers


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return build_network(config(TINY)).double().train()


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    left = torch.randn(2, 3, 64, 96, generator=g, dtype=torch.float64)
    return left, torch.roll(left, -4, dims=3) + 0.1 * torch.randn(2, 3, 64, 96, generator=g, dtype=torch.float64)


def _run(model: nn.Module, deferred: bool, iters: int = 3, channels_last: bool = False):
    model = copy.deepcopy(model)
    if channels_last:
        model.to_channels_last()
    model.deferred_weight_grads = deferred
    torch.manual_seed(5)                           # the disparity transformer's dropout
    init, preds = model(*_pair(), iters=iters)
    loss = init.mean() + sum((i + 1) * p.abs().mean() for i, p in enumerate(preds))
    loss.backward()
    return model, loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(("wide_input", "batch_iterations", "batch_linears"),
                         [pytest.param(256, 0, False, marks=pytest.mark.slow), (256, 0, True), (1, 0, False),
                          pytest.param(256, 2, True, marks=pytest.mark.slow),
                          pytest.param(16, 2, False, marks=pytest.mark.slow)],
                         ids=["batched", "batched_with_linears", "per_iteration", "batches_of_2", "mixed"])
def test_gradients_equal_autograds(model, monkeypatch, wide_input, batch_iterations, batch_linears):
    """Every convolution batched over all iterations (the tiny network has no wide input), the linears
    too, every layer per iteration, batches of two of the three iterations, and a mix."""
    monkeypatch.setattr(deferred_weight_grads, "WIDE_INPUT", wide_input)
    monkeypatch.setattr(deferred_weight_grads, "BATCH_ITERATIONS", batch_iterations)
    monkeypatch.setattr(deferred_weight_grads, "BATCH_LINEARS", batch_linears)
    _, ref_loss, ref = _run(model, deferred=False)
    tapped, loss, got = _run(model, deferred=True)
    assert loss == ref_loss
    assert got.keys() == ref.keys() and len(ref) > 100
    assert len(tapped_layers(tapped.update_block)) == 21   # every conv and linear of the update but the mask head
    for name, grad in got.items():
        torch.testing.assert_close(grad, ref[name], rtol=1e-6, atol=1e-9 * ref[name].abs().max().item(), msg=name)
    assert all(ref[n].abs().sum() > 0 for n in ref if n.startswith("update_block") and n.endswith("weight"))


@pytest.mark.slow
def test_fused_gates_take_one_product_when_their_gradients_are_one_tensor(model, monkeypatch):
    """channels_last: the GRUs' fused z/r convolution's two output gradients are adjacent channels of
    one tensor, read as one (one product for both); the gradients still equal autograd's."""
    runs = []
    original = deferred_weight_grads._fused_runs

    def spy(grads):
        runs.append(original(grads))
        return runs[-1]

    monkeypatch.setattr(deferred_weight_grads, "_fused_runs", spy)
    _, ref_loss, ref = _run(model, deferred=False, channels_last=True)
    _, loss, got = _run(model, deferred=True, channels_last=True)
    assert loss == ref_loss
    # the two GRUs read the same input; each one's z and r gates are one run (all iterations in one batch)
    assert [[0, 1], [2, 3]] in runs
    for name, grad in got.items():
        torch.testing.assert_close(grad, ref[name], rtol=1e-6, atol=1e-9 * ref[name].abs().max().item(), msg=name)


def test_frozen_layers_run_plainly_and_the_rest_still_match(model):
    frozen = copy.deepcopy(model)
    frozen.update_block.encoder.convc1.requires_grad_(False)
    frozen.update_block.gru04.small_gru.convr.requires_grad_(False)   # one half of a fused pair
    _, _, ref = _run(frozen, deferred=False)
    tapped, _, got = _run(frozen, deferred=True)
    assert "update_block.encoder.convc1.weight" not in got
    assert "update_block.gru04.small_gru.convz.weight" in got
    assert got.keys() == ref.keys()
    for name, grad in got.items():
        torch.testing.assert_close(grad, ref[name], rtol=1e-6, atol=1e-9 * ref[name].abs().max().item(), msg=name)


def test_a_second_backward_raises(model):
    tapped = copy.deepcopy(model)
    tapped.deferred_weight_grads = True
    init, preds = tapped(*_pair(), iters=2)
    loss = sum(p.mean() for p in preds)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="one backward"):
        loss.backward()


def test_forwards_that_do_not_train_do_not_tap(model, monkeypatch):
    created = []
    original = DeferredWeightGrads.__init__

    def spy(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        created.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(DeferredWeightGrads, "__init__", spy)
    net = copy.deepcopy(model)
    net.deferred_weight_grads = True
    with torch.no_grad():
        net(*_pair(), iters=2)
    net.update_block.requires_grad_(False)           # the update frozen (e.g. fine-tuning the encoder only)
    net(*_pair(), iters=2)
    assert not created
    net.update_block.requires_grad_(True)
    net.train()
    net.deferred_weight_grads = None                # automatic: CUDA only
    net(*_pair(), iters=2)
    assert not created
    net.deferred_weight_grads = True
    net(*_pair(), iters=2)
    assert len(created) == 1


@pytest.mark.parametrize("kind", ["conv3x3", "fused_pair", "depthwise", "linear"])
def test_tapped_layer_values_and_gradients(kind):
    """One layer, tapped by hand: same output; the tap's gradient and the recorded input give
    autograd's weight and bias gradients; the input gradient still flows through the layer."""
    torch.manual_seed(0)
    if kind == "linear":
        layers = [nn.Linear(6, 10).double()]
        x = torch.randn(2, 5, 7, 6, dtype=torch.float64, requires_grad=True)
        shape = (2, 5, 7, 10)
    else:
        groups = 6 if kind == "depthwise" else 1
        layers = [nn.Conv2d(6, 6 if groups > 1 else 4, 3 if kind != "depthwise" else 7,
                            padding=1 if kind != "depthwise" else 3, groups=groups).double()
                  for _ in range(2 if kind == "fused_pair" else 1)]
        x = torch.randn(2, 6, 5, 7, dtype=torch.float64, requires_grad=True)
        shape = (2, sum(c.out_channels for c in layers), 5, 7)
    for i, layer in enumerate(layers):
        layer.grad_key = f"l{i}"
    apply = (lambda ops: ops.linear(x, layers[0])) if kind == "linear" else (lambda ops: ops.conv(x, layers))
    ref = apply(PLAIN)
    dy = torch.randn(shape, dtype=torch.float64)
    ref_grads = torch.autograd.grad(ref, [x] + [p for m in layers for p in m.parameters()], dy)
    zeros = {f"l{i}": torch.zeros((), dtype=torch.float64).expand(
        shape[:1] + (m.out_channels,) + shape[2:] if kind != "linear" else shape).requires_grad_()
        for i, m in enumerate(layers)}
    ops = TappedOps(zeros)
    out = apply(ops)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    got_x, *taps = torch.autograd.grad(out, [x, *zeros.values()], dy)
    torch.testing.assert_close(got_x, ref_grads[0])
    got = [g for i, m in enumerate(layers) for g in weight_grads(m, ops.inputs[f"l{i}"], taps[i])]
    for g, r in zip(got, ref_grads[1:], strict=True):
        torch.testing.assert_close(g, r)


@pytest.mark.parametrize("out_channels", [8, 40])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_weight_grads_of_every_bias_path(out_channels, memory_format):
    """A convolution's bias gradient is ``convolution_backward``'s reduction below
    ``GEMV_BIAS_CHANNELS`` output channels or for an output gradient not in channels_last, a
    matrix-vector product over the (pixels, channels) view above: both are autograd's."""
    torch.manual_seed(2)
    conv = nn.Conv2d(6, out_channels, 3, padding=1).double().to(memory_format=memory_format)
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64).to(memory_format=memory_format)
    dy = torch.randn(2, out_channels, 5, 7, dtype=torch.float64).to(memory_format=memory_format)
    ref = torch.autograd.grad(conv(x), list(conv.parameters()), dy)
    got = weight_grads(conv, x, dy)
    assert (deferred_weight_grads._pixels_by_channels(dy) is not None) == (memory_format == torch.channels_last)
    for g, r in zip(got, ref, strict=True):
        torch.testing.assert_close(g, r)


def test_fp16_takes_every_weight_gradient_per_iteration(model):
    """A loss-scaled fp16 product over many iterations could overflow where autograd's per-iteration
    ones do not: in fp16 nothing is batched; in bf16 and fp32 every convolution without a wide input
    is (the linears not: ``BATCH_LINEARS``)."""
    block = model.update_block
    assert not DeferredWeightGrads(block, torch.float16).state.batched_keys
    convs = {key for key, layer in tapped_layers(block).items() if isinstance(layer, nn.Conv2d)}
    assert len(convs) < len(tapped_layers(block))
    for dtype in (torch.bfloat16, torch.float32):
        assert DeferredWeightGrads(block, dtype).state.batched_keys == convs


def test_parameters_cast_once_give_the_same_forward_and_gradients(model, monkeypatch):
    """Under bf16 autocast the tapped layers compute with their parameters cast once per forward
    (``DeferredWeightGrads.params``): the values autocast casts them to in every iteration, so the
    loss and every gradient are bit for bit those of casting per iteration."""
    def run(precast: bool):
        m = copy.deepcopy(model).float()
        m.deferred_weight_grads = True
        if not precast:
            monkeypatch.setattr(DeferredWeightGrads, "params", lambda self, skips=None: {})
        seen, sliced_used = [], []
        original, original_conv = TappedOps.__init__, TappedOps.conv

        def spy(self, taps, params=None):
            seen.append(params)
            original(self, taps, params)

        def spy_conv(self, x, convs, skip=0):
            if skip:                       # the input channels' weight slice, found precomputed?
                sliced_used.append(skipped_key(fused_key(convs), skip) in self.params)
            return original_conv(self, x, convs, skip)

        monkeypatch.setattr(TappedOps, "__init__", spy)
        monkeypatch.setattr(TappedOps, "conv", spy_conv)
        left, right = (t.float() for t in _pair())
        torch.manual_seed(5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            init, preds = m(left, right, iters=3)
            loss = init.mean() + sum((i + 1) * p.abs().mean() for i, p in enumerate(preds))
        loss.backward()
        monkeypatch.undo()
        return loss.detach(), {n: p.grad for n, p in m.named_parameters() if p.grad is not None}, seen, sliced_used

    ref_loss, ref, seen_ref, _ = run(precast=False)
    loss, got, seen, sliced_used = run(precast=True)
    assert all(not p for p in seen_ref) and len(seen) == 3
    assert all(p is seen[0] for p in seen), "cast once per forward, shared by every iteration"
    assert {t.dtype for ps in seen[0].values() for t in ps} == {torch.bfloat16}
    # the GRUs' fused z/r gates: their parameters concatenated once too
    gates = {f"gru04.{g}_gru.convz+gru04.{g}_gru.convr" for g in ("small", "large")}
    assert gates <= set(seen[0])
    # and the GRU's first convolution's slice of the motion channels (the context's share is computed
    # once per forward), made contiguous once instead of sliced in every iteration
    # (a wrong slice could not convolve the iterations' inputs: the loss and gradients below check it)
    conv0 = model.update_block.gru04.conv0[0]
    assert sliced_used == [True] * 3, "every iteration's skipped input found its slice"
    sliced = [k for k in seen[0] if k.startswith(f"{conv0.grad_key}[")]
    assert len(sliced) == 1
    skip = int(sliced[0].split("[")[1].rstrip(":]"))
    weight = seen[0][sliced[0]][0]
    assert weight.is_contiguous() and torch.equal(weight, conv0.weight[:, skip:].to(torch.bfloat16))
    assert torch.equal(loss, ref_loss)
    assert got.keys() == ref.keys()
    for name, grad in got.items():
        assert torch.equal(grad, ref[name]), name
