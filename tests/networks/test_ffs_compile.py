"""FastFoundationStereo.compile_regions: the encoder, one refinement iteration and the batched
upsampling compile once each (in training the iteration as three: the lookup's gather, the update
and the lookup's gradient scatter).

TorchDynamo + AOTAutograd (backend ``aot_eager``: the same graphs Inductor would receive, without
code generation, so the test stays fast on a CPU) must capture each region as one graph, reuse the
iteration graph for every refinement iteration, and give the eager outputs and gradients.
"""

from __future__ import annotations

import pytest
import torch
from ffs_configs import TINY, config

from skillbank.runtime.networks.factory import build_network
from skillbank.runtime.networks.speed import lookup_kernels

torch_dynamo = pytest.importorskip("torch._dynamo")


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    left = torch.randn(2, 3, 64, 96, generator=g)
    return left, torch.roll(left, -4, dims=3)


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.slow
@pytest.mark.parametrize("deferred", [False, True], ids=["weight_grads_in_region", "deferred_weight_grads"])
def test_compiled_regions_match_eager_and_compile_once(deferred):
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    model = build_network(config(TINY)).train()
    model.deferred_weight_grads = deferred
    left, right = _pair()

    def run() -> tuple[torch.Tensor, list[torch.Tensor], dict[str, torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        torch.manual_seed(5)                       # the disparity transformer's dropout
        init, preds = model(left, right, iters=4)
        (init.mean() + sum(p.mean() for p in preds)).backward()
        return init.detach(), [p.detach() for p in preds], _grads(model)

    ref_init, ref_preds, ref_grads = run()
    torch_dynamo.reset()
    counters.clear()
    model.compile_regions(backend="aot_eager")
    run()
    init, preds, grads = run()                     # second call: no new graphs
    # encoder, gather, update, gradient scatter, upsampling: 22 iterations reuse theirs; where the
    # lookup's Triton kernels run (here only under TRITON_INTERPRET=1) the gather's rows are compiled
    # and the gather and scatter are the kernels
    expected = 4 if lookup_kernels.usable(left) else 5
    assert counters["stats"]["unique_graphs"] == expected, dict(counters["stats"])
    assert not counters["recompiles"], dict(counters["recompiles"])
    assert len(preds) == 4
    torch.testing.assert_close(init, ref_init, rtol=1e-4, atol=1e-4)
    for p, r in zip(preds, ref_preds, strict=True):
        torch.testing.assert_close(p, r, rtol=1e-4, atol=1e-3)
    assert grads.keys() == ref_grads.keys() and len(grads) > 50
    for name, g in grads.items():
        torch.testing.assert_close(g, ref_grads[name], rtol=1e-3, atol=1e-4, msg=name)

    model.compile_regions(off=True)
    assert not model.speed.compiled
    torch_dynamo.reset()


@pytest.mark.slow
def test_compiled_regions_in_test_mode_clamp_and_shape():
    torch.manual_seed(0)
    model = build_network(config(TINY)).eval().compile_regions(backend="aot_eager")
    left, right = _pair()
    with torch.no_grad():
        out = model(left[..., :90], right[..., :90], test_mode=True)
    assert out.shape == (2, 1, 64, 90) and (out >= 0).all()
    torch_dynamo.reset()
