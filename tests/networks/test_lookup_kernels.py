"""The Triton lookup kernels compute what the torch lookup computes: values and accumulated gradients.

Runs on a GPU, or on the CPU with Triton's interpreter (``TRITON_INTERPRET=1``); skipped where
Triton is not installed (the CI image: the torch CPU wheel does not bring it).
"""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("triton")

from skillbank.runtime.networks.common.cost_volume import (  # noqa: E402
    add_lookup_grad_,
    build_lookup_tables,
    lookup_rows,
)
from skillbank.runtime.networks.speed import lookup_kernels  # noqa: E402
from skillbank.runtime.networks.speed.training_lookup import AccumulatingLookup, gather_lookup  # noqa: E402

if torch.cuda.is_available():
    DEVICE = "cuda"
elif os.environ.get("TRITON_INTERPRET") == "1":
    DEVICE = "cpu"
else:
    pytest.skip("Triton kernels need a GPU (or TRITON_INTERPRET=1)", allow_module_level=True)


def _tables(dtype: torch.dtype, requires_grad: bool = False, channels: int = 5, depth: int = 12, width: int = 14):
    g = torch.Generator().manual_seed(4)
    left = torch.randn(2, 8, 3, width, generator=g)
    right = torch.randn(2, 8, 3, width, generator=g)
    geo = torch.randn(2, channels, depth, 3, width, generator=g)
    tensors = [t.to(DEVICE).requires_grad_(requires_grad) for t in (left, right, geo)]
    return tensors, build_lookup_tables(tensors[0], tensors[1], tensors[2].to(dtype), 2, 4)


def _disp(width: int = 14, depth: int = 12, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    d = torch.rand(2, 1, 3, width, generator=g) * (depth + 6) - 3
    d[0, 0, 0, :5] = torch.tensor([-50.0, 1e6, float("nan"), 0.0, depth - 1.0])
    return d.to(DEVICE)


@pytest.mark.parametrize(("store", "out", "pad", "channels_last"),
                         [(torch.float32, torch.float32, 0, True), (torch.bfloat16, torch.bfloat16, 4, True),
                          (torch.float32, torch.bfloat16, 3, False)])
def test_gather_matches_the_torch_lookup(store, out, pad, channels_last):
    _, tables = _tables(store)
    disp = _disp()
    want, want_rows = gather_lookup(tables, disp, channels_last, pad, out)
    got, rows = lookup_kernels.gather_lookup(tables, disp, channels_last, pad, out)
    assert got.shape == want.shape and got.dtype == out
    assert got.is_contiguous(memory_format=torch.channels_last) or not channels_last
    tol = 1e-6 if out == torch.float32 else 8e-3          # bf16: one unit in the last place (of 2^-7)
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    torch.testing.assert_close(rows.geo_idx, want_rows.geo_idx)


@pytest.mark.parametrize(("acc_dtype", "grad_dtype", "pad"),
                         [(torch.float32, torch.float32, 0), (torch.bfloat16, torch.bfloat16, 4)])
def test_scatter_adds_the_torch_adjoint_into_the_buffers(acc_dtype, grad_dtype, pad):
    _, tables = _tables(acc_dtype)
    disp = _disp()
    rows = lookup_rows(tables, disp)
    feat, _ = gather_lookup(tables, disp, True, pad, grad_dtype)
    g = torch.Generator().manual_seed(9)
    grad = torch.randn(feat.shape, generator=g).to(DEVICE, grad_dtype).contiguous(memory_format=torch.channels_last)
    start_geo = torch.randn(tables.geo_store.shape, generator=g).to(DEVICE, acc_dtype)
    start_corr = torch.randn(tables.corr_store.shape, generator=g).to(DEVICE)
    results = []
    for fn in (add_lookup_grad_, lookup_kernels.add_lookup_grad_):
        geo_acc, corr_acc = start_geo.clone(), start_corr.clone()
        fn(grad, rows, geo_acc, corr_acc)
        results.append((geo_acc, corr_acc))
    # pad rows (zero in the stores) may hold anything: only the volume's rows are compared
    real_geo = tables.geo_store.float().abs().sum(1) != 0
    real_corr = tables.corr_store != 0
    tol = 1e-5 if acc_dtype == torch.float32 else 1e-2
    torch.testing.assert_close(results[1][0][real_geo], results[0][0][real_geo], rtol=tol, atol=tol)
    torch.testing.assert_close(results[1][1][real_corr], results[0][1][real_corr], rtol=1e-5, atol=1e-5)
    assert (results[1][0][real_geo] != start_geo[real_geo]).any()


def test_training_lookup_with_the_kernels_gives_the_torch_gradients():
    grads = []
    for forward_fn, grad_fn in ((gather_lookup, add_lookup_grad_),
                                (lookup_kernels.gather_lookup, lookup_kernels.add_lookup_grad_)):
        inputs, tables = _tables(torch.float32, requires_grad=True)
        lookup = AccumulatingLookup(tables, forward_fn=forward_fn, grad_fn=grad_fn)
        loss = sum((lookup(_disp(seed=s)) * (s + 1)).sin().sum() for s in range(3))
        loss.backward()
        grads.append([t.grad for t in inputs])
    for got, want in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert all(g.abs().sum() > 0 for g in grads[1])
