"""AccumulatingLookup: the refinement lookups of a training forward, their gradients summed in one buffer.

It must give exactly the values and gradients that autograd through :func:`sample_lookup` gives,
over several iterations, at the borders (taps clamped onto shared zero pad rows), far outside and
for non-finite disparities; and the FFS network must use it whenever it trains.
"""

from __future__ import annotations

import pytest
import torch
from ffs_configs import TINY, config

from skillbank.runtime.networks.common.cost_volume import add_lookup_grad_, build_lookup_tables, sample_lookup
from skillbank.runtime.networks.factory import build_network
from skillbank.runtime.networks.speed import lookup_kernels
from skillbank.runtime.networks.speed.training_lookup import AccumulatingLookup


def _inputs(depth: int = 9, width: int = 10):
    g = torch.Generator().manual_seed(3)
    left = torch.randn(2, 6, 3, width, generator=g, dtype=torch.float64, requires_grad=True)
    right = torch.randn(2, 6, 3, width, generator=g, dtype=torch.float64, requires_grad=True)
    geo = torch.randn(2, 5, depth, 3, width, generator=g, dtype=torch.float64, requires_grad=True)
    # disparities inside, on both borders, far outside, and non-finite, one map per iteration
    disps = [torch.rand(2, 1, 3, width, generator=g, dtype=torch.float64) * (depth + 6) - 3 for _ in range(3)]
    disps[1][0, 0, 0, :4] = torch.tensor([-50.0, 1e6, float("nan"), float("inf")])
    disps[2][1, 0, 2, :3] = torch.tensor([0.0, depth - 1.0, -0.5])
    weights = [torch.randn(2, 2 * 9 * 6 + 4, 3, width, generator=g, dtype=torch.float64) for _ in disps]
    return left, right, geo, disps, weights


def _grads(lookup_of, pad: int = 0):
    left, right, geo, disps, weights = _inputs()
    tables = build_lookup_tables(left, right, geo, 2, 4)
    lookup = lookup_of(tables)
    outs = [lookup(d) for d in disps]
    loss = sum((o[:, :o.shape[1] - pad] * w[:, :o.shape[1] - pad]).sum() for o, w in zip(outs, weights, strict=True))
    loss.backward()
    return [o.detach() for o in outs], (left.grad, right.grad, geo.grad)


@pytest.mark.parametrize("pad", [0, 4])
def test_values_and_gradients_match_autograd_through_the_gather(pad):
    ref_out, ref_grads = _grads(lambda t: lambda d: sample_lookup(t, d, pad_channels=pad), pad)
    got_out, got_grads = _grads(
        lambda t: AccumulatingLookup(t, pad_channels=pad), pad)
    # the lookup computes in fp32 (its blends are the same operations in both; only the order in
    # which the iterations' gradients are summed differs)
    for got, ref in zip(got_out + list(got_grads), ref_out + list(ref_grads), strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)
    assert ref_grads[2].abs().sum() > 0 and ref_grads[0].abs().sum() > 0


def test_reduced_precision_output_is_the_cast_of_the_fp32_lookup():
    left, right, geo, disps, _ = _inputs()
    tables = build_lookup_tables(left.float(), right.float(), geo.float(), 2, 4)
    got = AccumulatingLookup(tables)(disps[0], torch.bfloat16)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got, sample_lookup(tables, disps[0]).to(torch.bfloat16), rtol=0, atol=0)


def test_a_second_backward_raises_instead_of_doubling_the_gradient():
    left, right, geo, disps, _ = _inputs()
    lookup = AccumulatingLookup(build_lookup_tables(left, right, geo, 2, 4))
    loss = lookup(disps[0]).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="one backward"):
        loss.backward()


def test_needed_only_where_the_tables_record_gradients():
    left, right, geo, _, _ = _inputs()
    tables = build_lookup_tables(left, right, geo, 2, 4)
    assert AccumulatingLookup.needed(tables)
    with torch.no_grad():
        assert not AccumulatingLookup.needed(build_lookup_tables(left, right, geo, 2, 4))
    assert not AccumulatingLookup.needed(build_lookup_tables(left.detach(), right.detach(), geo.detach(), 2, 4))
    traced = []
    torch.jit.trace(lambda x: (traced.append(AccumulatingLookup.needed(tables)), x * 2)[1], torch.ones(1))
    assert traced and not any(traced)


def test_the_network_trains_through_it_and_infers_without_it(monkeypatch):
    monkeypatch.setattr(lookup_kernels, "usable", lambda t: False)     # the torch functions, not Triton's
    calls = []

    def counting(*args):
        calls.append(1)
        return add_lookup_grad_(*args)

    torch.manual_seed(0)
    model = build_network(config(TINY)).train()
    model.speed._add_lookup_grad = counting        # what the runner's region lookup finds
    left = torch.randn(1, 3, 64, 96)
    _, preds = model(left, torch.roll(left, -4, dims=3), iters=3)
    sum(p.mean() for p in preds).backward()
    assert len(calls) == 3
    calls.clear()
    with torch.no_grad():
        model.eval()(left, left, iters=2, test_mode=True)
    assert not calls
