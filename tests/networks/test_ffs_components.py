"""FFS building blocks against straightforward reference formulations of TAO's math.

The references below are deliberately literal (Python loops over disparities, grid_sample for
the lookup, unfold for the upsampling, SDPA on the raw head view): the vectorised, export
friendly implementations must reproduce them.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from skillbank.runtime.networks.common.blocks import TrilinearUpsample
from skillbank.runtime.networks.common.cost_volume import (
    GeoEncodingLookup,
    build_concat_volume,
    build_gwc_volume,
)
from skillbank.runtime.networks.common.disparity_attention import DisparityMultiheadAttention
from skillbank.runtime.networks.common.padding import pad_to_multiple, unpad
from skillbank.runtime.networks.common.upsample import convex_upsample


def loop_gwc(left, right, max_disp, groups, normalize):
    b, c, h, w = left.shape
    vol = left.new_zeros(b, groups, max_disp, h, w)
    for d in range(min(max_disp, w)):
        lf = left[..., d:].reshape(b, groups, c // groups, h, w - d)
        rf = right[..., :w - d].reshape(b, groups, c // groups, h, w - d)
        if normalize:
            lf, rf = F.normalize(lf, dim=2), F.normalize(rf, dim=2)
        vol[:, :, d, :, d:] = (lf * rf).sum(dim=2)
    return vol


def loop_concat(left, right, max_disp):
    b, c, h, w = left.shape
    vol = left.new_zeros(b, 2 * c, max_disp, h, w)
    for d in range(max_disp):
        vol[:, :c, d] = left
        if d < w:
            vol[:, c:, d, :, d:] = right[..., :w - d]
    return vol


def grid_sample_lookup(left, right, geo_volume, levels, radius, disp):
    """TAO's CombinedGeoEncodingVolume: avg-pool pyramids, grid_sample with align_corners=True."""
    b, c, d, h, w = geo_volume.shape
    n = b * h * w
    corr = torch.einsum("bchw,bchv->bhwv", F.normalize(left, dim=1), F.normalize(right, dim=1))
    geo = geo_volume.permute(0, 3, 4, 1, 2).reshape(n, c, 1, d)
    corr = corr.reshape(n, 1, 1, w)
    dx = torch.arange(-radius, radius + 1, dtype=torch.float32).view(1, 1, -1, 1)
    x = torch.arange(w, dtype=torch.float32).view(1, 1, w, 1).expand(b, h, w, 1).reshape(n, 1, 1, 1)
    dd = disp.reshape(n, 1, 1, 1)

    def sample(img, xs):
        xs = 2 * xs / (img.shape[-1] - 1) - 1
        grid = torch.cat([xs, torch.zeros_like(xs)], dim=-1)
        return F.grid_sample(img, grid, align_corners=True).reshape(b, h, w, -1)

    out = []
    for i in range(levels):
        if i > 0:
            geo = F.avg_pool2d(geo, [1, 2], stride=[1, 2])
            corr = F.avg_pool2d(corr, [1, 2], stride=[1, 2])
        out.append(sample(geo, dx + dd / 2 ** i))
        out.append(sample(corr, x / 2 ** i - dd / 2 ** i + dx))
    return torch.cat(out, dim=-1).permute(0, 3, 1, 2)


@pytest.mark.parametrize("normalize", [True, False])
def test_gwc_volume_matches_loop(normalize):
    torch.manual_seed(0)
    left, right = torch.randn(2, 16, 3, 20), torch.randn(2, 16, 3, 20)
    ours = build_gwc_volume(left, right, 8, 4, normalize)
    ref = loop_gwc(left, right, 8, 4, normalize)
    assert ours.shape == (2, 4, 8, 3, 20)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    assert torch.all(ours[:, :, 5, :, :5] == 0), "w < d has no match and must be zero"


def _outputs_and_grads(build, feature_shape, volume_shape):  # noqa: ANN001
    """``build(left, right)``, and the gradients of a random weighting of it, on seeded random features."""
    gen = torch.Generator().manual_seed(2)
    left = torch.randn(*feature_shape, generator=gen).requires_grad_()
    right = torch.randn(*feature_shape, generator=gen).requires_grad_()
    out = build(left, right)
    (out * torch.randn(*volume_shape, generator=gen)).sum().backward()
    return out.detach(), left.grad, right.grad


@pytest.mark.parametrize("width", [20, 5])
def test_gwc_volume_gradients_match_loop(width):
    """The diagonal-band reading (and its backward) equals the loop, also when D > W."""
    ours, ref = (_outputs_and_grads(lambda l, r, f=f: f(l, r, 8, 2, True), (1, 8, 2, width), (1, 2, 8, 2, width))
                 for f in (build_gwc_volume, loop_gwc))
    torch.testing.assert_close(ours, ref)


def test_gwc_rejects_indivisible_groups():
    with pytest.raises(ValueError, match="divisible by cv_group"):
        build_gwc_volume(torch.randn(1, 10, 2, 8), torch.randn(1, 10, 2, 8), 4, 4)


@pytest.mark.parametrize("width", [12, 4])
def test_concat_volume_gradients_match_loop(width):
    """The strided reading of the repeated right rows (and its backward) equals the loop, also when D > W."""
    ours, ref = (_outputs_and_grads(lambda l, r, f=f: f(l, r, 6), (2, 5, 3, width), (2, 10, 6, 3, width))
                 for f in (build_concat_volume, loop_concat))
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=1e-6)


def test_concat_volume_matches_loop():
    torch.manual_seed(0)
    left, right = torch.randn(2, 5, 3, 12), torch.randn(2, 5, 3, 12)
    torch.testing.assert_close(build_concat_volume(left, right, 6), loop_concat(left, right, 6), atol=0, rtol=0)


def test_lookup_matches_grid_sample_including_borders():
    torch.manual_seed(0)
    b, c, d, h, w = 2, 3, 16, 2, 24
    left, right = torch.randn(b, 12, h, w), torch.randn(b, 12, h, w)
    geo = torch.randn(b, c, d, h, w)
    disp = torch.rand(b, 1, h, w) * 30 - 6             # below 0, inside, beyond D and W
    disp[0, 0, 0, :6] = torch.tensor([0.0, 3.0, 15.0, -1.0, 16.0, 7.5])  # exact integers / edges
    lookup = GeoEncodingLookup(left, right, geo, num_levels=2, radius=4)
    ours = lookup(disp)
    ref = grid_sample_lookup(left, right, geo, 2, 4, disp)
    assert ours.shape == (b, 2 * 9 * (c + 1), h, w)
    torch.testing.assert_close(ours, ref, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("depth", [16, 13])
def test_lookup_gradients_match_grid_sample(depth):
    """The gathers' backward (index_add into the row stores) equals grid_sample's, for the volume and
    both feature maps; an odd D drops the pooled tail as avg_pool does."""
    def grads(fn):  # noqa: ANN001
        gen = torch.Generator().manual_seed(3)
        left = torch.randn(2, 12, 2, 24, generator=gen).requires_grad_()
        right = torch.randn(2, 12, 2, 24, generator=gen).requires_grad_()
        geo = torch.randn(2, 3, depth, 2, 24, generator=gen).requires_grad_()
        disp = torch.rand(2, 1, 2, 24, generator=gen) * 30 - 6
        out = fn(left, right, geo, disp)
        (out * torch.randn(out.shape, generator=gen)).sum().backward()
        return out.detach(), geo.grad, left.grad, right.grad

    ours = grads(lambda lf, rt, g, d: GeoEncodingLookup(lf, rt, g, 2, 4)(d))
    ref = grads(lambda lf, rt, g, d: grid_sample_lookup(lf, rt, g, 2, 4, d))
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, atol=5e-5, rtol=1e-4)


def test_lookup_far_outside_reads_zeros():
    geo = torch.randn(1, 2, 8, 1, 4)
    lookup = GeoEncodingLookup(torch.randn(1, 4, 1, 4), torch.randn(1, 4, 1, 4), geo, 1, 2)
    out = lookup(torch.full((1, 1, 1, 4), 1e4))
    assert torch.count_nonzero(out) == 0


def test_lookup_non_finite_disparity_reads_zeros_instead_of_indexing_out_of_range():
    """A diverged run's NaN/inf disparity must not crash the gather (on a GPU: a device assert that
    kills the process before the NaN guard can report the divergence)."""
    torch.manual_seed(0)
    lookup = GeoEncodingLookup(torch.randn(1, 4, 1, 6), torch.randn(1, 4, 1, 6), torch.randn(1, 2, 8, 1, 6), 2, 2)
    disp = torch.tensor([[[[float("nan"), float("inf"), float("-inf"), 1.0, 2.5, 3.0]]]])
    out = lookup(disp)
    assert torch.count_nonzero(out[..., :3]) == 0
    finite = disp.clone()
    finite[..., :3] = 1e4                          # far outside reads zeros too: the same output there
    torch.testing.assert_close(out[..., 3:], lookup(finite)[..., 3:], atol=0, rtol=0)


def test_convex_upsample_matches_unfold_nearest():
    torch.manual_seed(0)
    disp = torch.rand(2, 1, 5, 7) * 10
    weights = torch.softmax(torch.randn(2, 9, 20, 28), dim=1)
    unf = F.unfold(disp * 4, 3, padding=1).reshape(2, 9, 5, 7)
    ref = (F.interpolate(unf, (20, 28), mode="nearest") * weights).sum(1, keepdim=True)
    torch.testing.assert_close(convex_upsample(disp, weights), ref, atol=1e-5, rtol=1e-5)


def test_upsampling_of_several_iterations_at_once_equals_one_by_one():
    """FFS upsamples every iteration's prediction in one batch over the shared image stem (its fuse
    conv split into a per-iteration and a shared part), the mask head run on all iterations' hidden
    states at once: outputs and gradients equal one call per iteration with the stem concatenated
    each time."""
    from ffs_configs import TINY, config

    from skillbank.runtime.networks.factory import build_network

    torch.manual_seed(0)
    model = build_network(config(TINY)).train()
    k, b, h, w = 3, 2, 4, 6
    channels = model.update_block.mask[0].in_channels          # the GRU hidden states
    disp, net = torch.rand(k * b, 1, h, w) * 5, torch.randn(k * b, channels, h, w)
    stem = torch.randn(b, model.stem_2[1].out_channels, 2 * h, 2 * w)
    seed = torch.randn(k * b, 1, 4 * h, 4 * w)

    def run(batched: bool):  # noqa: ANN202
        model.zero_grad(set_to_none=True)
        s, n = stem.clone().requires_grad_(), net.clone().requires_grad_()
        if batched:
            out = model._upsample(disp, n, s)
        else:
            out = torch.cat([model._upsample(disp[i * b:(i + 1) * b], n[i * b:(i + 1) * b], s) for i in range(k)])
        (out * seed).sum().backward()
        params = [*model.spx_2_gru.parameters(), *model.update_block.mask.parameters()]
        return [out.detach(), s.grad, n.grad, *(p.grad for p in params)]

    for got, want in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def _mha_inputs(layout):
    torch.manual_seed(0)
    attn = DisparityMultiheadAttention(8, 4, layout)
    x = torch.randn(5, 6, 8)
    return attn, x, [p(x) for p in (attn.q_proj, attn.k_proj, attn.v_proj)]


def test_heads_layout_attends_across_heads_per_position():
    attn, x, (q, k, v) = _mha_inputs("heads")
    q, k, v = (t.view(5, 6, 4, 2) for t in (q, k, v))
    scores = torch.softmax(q @ k.transpose(-1, -2) / 2 ** 0.5, dim=-1)   # (5, 6, 4, 4): heads x heads
    ref = attn.out_proj((scores @ v).reshape(5, 6, 8))
    torch.testing.assert_close(attn(x), ref, atol=1e-6, rtol=1e-5)


def test_tokens_layout_is_standard_multihead_attention():
    attn, x, _ = _mha_inputs("tokens")
    mha = torch.nn.MultiheadAttention(8, 4, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]))
        mha.in_proj_bias.copy_(torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias]))
        mha.out_proj.load_state_dict(attn.out_proj.state_dict())
    torch.testing.assert_close(attn(x), mha(x, x, x, need_weights=False)[0], atol=1e-6, rtol=1e-5)


def test_attention_layout_is_validated():
    with pytest.raises(ValueError, match="'heads' or 'tokens'"):
        DisparityMultiheadAttention(8, 4, "rows")


def test_padding_is_centred_replicate_and_unpads_exactly():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    padded, pads = pad_to_multiple(x, 4)
    assert padded.shape == (2, 3, 8, 8) and pads == (0, 1, 1, 2)
    assert torch.equal(padded[..., 0, 0:7], x[..., 0, :]), "top row replicates the first row"
    assert torch.equal(unpad(padded, pads), x)


def test_selective_gru_matches_the_gate_equations():
    from skillbank.runtime.networks.common.update_layers import SelectiveConvGRU

    torch.manual_seed(0)
    gru = SelectiveConvGRU(hidden=6, input_channels=5, gating_widths=[7, 9])
    h, x, att = torch.randn(2, 6, 4, 5), torch.randn(2, 5, 4, 5), torch.rand(2, 1, 4, 5)
    x0 = torch.relu(gru.conv0[0](x))
    hx = torch.relu(gru.conv1[0](torch.cat([x0, h], 1)))

    def step(cell):
        z, r = torch.sigmoid(cell.convz(hx)), torch.sigmoid(cell.convr(hx))
        q = torch.tanh(cell.convq(torch.cat([r * h, x0], 1)))
        return (1 - z) * h + z * q

    ref = step(gru.small_gru) * att + step(gru.large_gru) * (1 - att)
    torch.testing.assert_close(gru(att, h, x), ref, atol=1e-6, rtol=1e-5)


def test_motion_encoder_hands_the_convolutions_their_dtype_and_memory_format(monkeypatch):
    """Under autocast the encoder's output (the raw disparity appended) and the disparity branch's
    input are in the compute dtype and channels_last, like the rest of the iteration: not an fp32
    NCHW tensor that the GRU's first convolution would cast (and the deferred weight gradients
    record, concatenate and cast); the values are the ones autocast's own casts give (the fp32
    disparity joined as it is, then cast)."""
    from skillbank.runtime.networks.common import update_layers
    from skillbank.runtime.networks.common.update_layers import MotionEncoder
    from skillbank.runtime.networks.speed.layer_ops import TappedOps, tag_layers

    torch.manual_seed(0)
    enc = MotionEncoder(lookup_channels=12, widths=[8, 8, 8, 8], out_channels=7).to(memory_format=torch.channels_last)
    tag_layers(enc)
    corr = torch.randn(2, 12, 6, 10).to(memory_format=torch.channels_last)
    disp = 40 * torch.rand(2, 1, 6, 10)
    zero = torch.zeros((), dtype=torch.bfloat16)      # the taps are in the compute dtype
    ops = TappedOps({m.grad_key: zero.expand(2, m.out_channels, 6, 10)
                     for m in enc.modules() if hasattr(m, "grad_key")})
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(disp, corr, ops)
        ref = enc(disp, corr)
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out[:, -1:], disp.to(torch.bfloat16))
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    convd1 = ops.inputs["convd1"]
    assert convd1.dtype == torch.bfloat16 and convd1.is_contiguous(memory_format=torch.channels_last)
    monkeypatch.setattr(update_layers, "_joining", lambda disp, like: disp)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fp32_joined = enc(disp, corr)
    assert fp32_joined.dtype == torch.float32
    assert torch.equal(fp32_joined.to(torch.bfloat16), out)


@pytest.mark.parametrize("norm", [True, False])
def test_edgenext_block_matches_its_definition(norm):
    from skillbank.runtime.networks.common.blocks import EdgeNextConvBlock

    torch.manual_seed(0)
    block = EdgeNextConvBlock(8, kernel_size=5, hidden=12, norm=norm, layer_scale_init=0.5)
    x = torch.randn(2, 8, 6, 7)
    y = block.dwconv(x).permute(0, 2, 3, 1)
    if norm:
        y = F.layer_norm(y, (8,), block.norm.weight, block.norm.bias, 1e-6)
    y = block.pwconv2(F.gelu(block.pwconv1(y))) * block.gamma
    torch.testing.assert_close(block(x), x + y.permute(0, 3, 1, 2), atol=1e-6, rtol=1e-5)
    assert torch.all(EdgeNextConvBlock(8).gamma == 1e-6), "EdgeNeXt layer scale starts at 1e-6"


@pytest.mark.parametrize("shape", [(2, 5, 3, 4, 6), (1, 2, 1, 1, 2), (1, 3, 12, 5, 12)])
def test_trilinear_upsample_matches_interpolate(shape):
    """The matrix-product trilinear x4 (the disparity transformer's upsampling) equals F.interpolate,
    values and gradients, including the clamped borders and size-1 axes."""
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    up = TrilinearUpsample(4)
    ours = up(x)
    ref = F.interpolate(x, scale_factor=4, mode="trilinear", align_corners=False)
    torch.testing.assert_close(ours, ref)
    g = torch.randn_like(ref)
    torch.testing.assert_close(torch.autograd.grad(ours, x, g)[0], torch.autograd.grad(ref, x, g)[0])
    assert ours.grad_fn.name().startswith("View")                   # the matrix products ran
    torch.testing.assert_close(up.eval()(x), ref)                    # eval mode: F.interpolate itself


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_compiled_gwc_volume_under_autocast_keeps_fp32_gradients():
    """The correlation is an fp32 island: compiled inside a bf16 autocast region (as the encoder is), its
    backward must stay fp32 too (``cost_volume._RowPairs``; autograd's own matmul backward ran its
    products in bf16 there). Gradients equal eager fp32's to fp32 rounding, not bf16's (~1e-2)."""
    torch.manual_seed(0)
    left = torch.randn(2, 48, 20, 46, device="cuda", requires_grad=True)
    right = torch.randn(2, 48, 20, 46, device="cuda", requires_grad=True)
    weight = torch.randn(2, 8, 12, 20, 46, device="cuda")

    def loss(lf, rf):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return (build_gwc_volume(lf, rf, 12, 8, True) * weight).sum()

    ref = torch.autograd.grad(loss(left, right), (left, right))
    got = torch.autograd.grad(torch.compile(loss, fullgraph=True)(left, right), (left, right))
    for g, r in zip(got, ref, strict=True):
        assert g.dtype == torch.float32
        assert ((g - r).abs().max() / r.abs().max()).item() < 1e-4
