"""grad_in_layout: the identity whose gradient arrives in the asked memory layout; memory_format_of;
and the instance norm that keeps a channels_last input's layout."""

import pytest
import torch
import torch.nn.functional as F

from skillbank.runtime.networks.common.blocks import InstanceNorm2d, InstanceNorm3d, make_norm
from skillbank.runtime.networks.speed.grad_layout import grad_in_layout, memory_format_of


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_the_gradient_arrives_in_the_asked_layout_with_the_same_values(memory_format):
    x = torch.randn(2, 5, 4, 3, requires_grad=True)
    seen = {}
    x.register_hook(lambda g: seen.setdefault("grad", g))   # (before AccumulateGrad restrides it)
    y = grad_in_layout(x, memory_format)
    # a gradient computed in the other layout (a permuted product's)
    upstream = torch.randn(2, 4, 3, 5).permute(0, 3, 1, 2) if memory_format == torch.contiguous_format \
        else torch.randn(2, 5, 4, 3)
    (y * upstream).sum().backward()
    assert torch.equal(y, x)
    assert torch.equal(seen["grad"], upstream)
    assert seen["grad"].is_contiguous(memory_format=memory_format)


def test_no_gradient_no_node():
    x = torch.randn(3, 4)
    assert grad_in_layout(x) is x
    w = torch.randn(3, 4, requires_grad=True)
    with torch.no_grad():
        assert grad_in_layout(w) is w


def test_the_compiled_backward_gives_the_eager_gradient():
    """Traced by AOTAutograd (torch.compile), the identity's backward gives eager's gradient."""
    def f(x):
        return (grad_in_layout(x.permute(0, 2, 1) * 2.0) ** 2).sum()

    x = torch.randn(4, 6, 5, requires_grad=True)
    g_eager, = torch.autograd.grad(f(x), x)
    g_compiled, = torch.autograd.grad(torch.compile(f, backend="aot_eager")(x), x)
    torch.testing.assert_close(g_compiled, g_eager)


def test_memory_format_of_names_channels_last_only_where_it_is_not_also_nchw():
    x = torch.randn(2, 5, 4, 3)
    assert memory_format_of(x) is torch.contiguous_format
    assert memory_format_of(x.contiguous(memory_format=torch.channels_last)) is torch.channels_last
    assert memory_format_of(torch.randn(2, 5, 3, 4, 6).contiguous(memory_format=torch.channels_last_3d)) \
        is torch.channels_last_3d
    # degenerate: one channel is both layouts at once -> contiguous; other ranks -> contiguous
    assert memory_format_of(torch.randn(2, 1, 4, 3).contiguous(memory_format=torch.channels_last)) \
        is torch.contiguous_format
    assert memory_format_of(torch.randn(3, 4)) is torch.contiguous_format


@pytest.mark.parametrize("cls, shape, fmt", [(InstanceNorm2d, (2, 6, 9, 7), torch.channels_last),
                                             (InstanceNorm3d, (2, 6, 3, 9, 7), torch.channels_last_3d)])
@pytest.mark.parametrize("affine", [False, True])
def test_the_layout_keeping_instance_norm_is_the_instance_norm_in_the_input_layout(cls, shape, fmt, affine):
    """Its reductions (the GPU path for channels_last inputs) give ``F.instance_norm``'s values and
    gradients to fp32 rounding, in the input's layout; bf16 inputs are normalised in fp32."""
    torch.manual_seed(0)
    norm = cls(shape[1], affine=affine)
    if affine:
        with torch.no_grad():
            norm.weight.uniform_(0.5, 2.0)
            norm.bias.uniform_(-1.0, 1.0)
    x = (torch.randn(shape) * 3 + 1).contiguous(memory_format=fmt).requires_grad_()
    y = norm.normalise_in_layout(x)
    assert y.is_contiguous(memory_format=fmt) and not y.is_contiguous()
    x_ref = x.detach().clone().requires_grad_()
    ref = F.instance_norm(x_ref, weight=norm.weight, bias=norm.bias, eps=norm.eps)
    torch.testing.assert_close(y, ref, atol=2e-6, rtol=1e-5)
    upstream = torch.randn(shape)
    (y * upstream).sum().backward()
    (ref * upstream).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, atol=2e-5, rtol=1e-4)
    y16 = norm.normalise_in_layout(x.detach().bfloat16())
    assert y16.dtype == torch.bfloat16
    torch.testing.assert_close(y16.float(), ref.detach(), atol=0.05, rtol=0.02)


def test_the_instance_norm_runs_f_instance_norm_on_the_cpu_and_for_nchw_inputs(monkeypatch):
    """Bit-identical to ``nn.InstanceNorm2d`` there (the ONNX export, the CPU golden tests), with its
    state_dict keys, and ``make_norm`` builds it."""
    torch.manual_seed(1)
    ours, plain = InstanceNorm2d(6, affine=True), torch.nn.InstanceNorm2d(6, affine=True)
    plain.load_state_dict(ours.state_dict())
    assert ours.state_dict().keys() == plain.state_dict().keys()
    x = torch.randn(2, 6, 9, 7)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    for inp in (x, x_cl):
        assert torch.equal(ours(inp), plain(inp))
    monkeypatch.setattr(InstanceNorm2d, "on_cpu", True)     # as benchmarks/conv_layouts.py traces
    assert ours(x_cl).is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(ours(x), plain(x))                   # (NCHW inputs: F.instance_norm still)
    assert isinstance(make_norm("instance2d", 6), InstanceNorm2d)
    assert isinstance(make_norm("instance3d", 6), InstanceNorm3d)
