"""grad_in_layout: the identity whose gradient arrives in the asked memory layout."""

import pytest
import torch

from skillbank.runtime.networks.grad_layout import grad_in_layout


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
