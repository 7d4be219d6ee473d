"""Round the pruned channel widths of a FastFoundationStereo up to a multiple of 8, exactly.

bp2 prunes widths to values such as 28 (3D cost volume), 60 (GRU hidden), 97/100 (GRU input and
gating), 36 (disparity head) and 12 (image stem). cuDNN's half-precision channels-last kernels
want multiples of 8: other counts cost an ``nhwcAddPaddingKernel`` copy per convolution and often
a slower kernel (every layer timed both ways: ``benchmarks/EXPERIMENTS.md``, conv_alignment).

:func:`pad_channels_` widens those tensors with zeros so that the padded channels carry exact zeros
through the whole network and the result does not change (up to rounding):
- a widened convolution / linear layer gets zero weights into and out of the new channels and a
  zero bias there; BatchNorm gets weight 0, bias 0, running mean 0, running variance 1, so a padded
  channel stays 0 through conv -> norm -> (Leaky)ReLU / GELU / tanh (all map 0 to 0);
- the GRU keeps padded hidden channels at 0: ``lerp(h=0, q=tanh(0)=0, z) = 0``;
- where a layer needs the real channels only (the disparity transformer's LayerNorm, the lookup,
  the channel and spatial attention of the context) the tensor is sliced to them or padded after;
- inputs assembled by concatenation (``cat([x, h])``) get an index map per segment;
- the prediction heads (1 classifier logit, 1 disparity delta, 9 upsampling logits) may compute
  zero extra outputs that the forward slices off (``heads=True``).

An inference transform, like :func:`fold_batchnorm.fold_batchnorm_`: call it on a loaded model in eval
mode, before casting and ``to_channels_last``. The state_dict changes shape (keep the original for
checkpoints). EdgeNeXt's LayerNorm-ed features keep their widths.

Training (``train.pad_channels``): ``pad_channels_(model, training=True)`` also keeps the
checkpoint contract: ``state_dict()`` returns the original names and shapes and
``load_state_dict`` accepts them (hooks driven by :class:`PaddingMap`, found by padding a copy
whose entries hold their own index), and :func:`unpad_tensor` / :func:`pad_tensor` convert
per-parameter tensors such as optimiser moments.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

#: A tensor's channel layout as consecutive (real, padded) segments.
Segments = Sequence[tuple[int, int]]
_TRANSPOSED = (nn.ConvTranspose2d, nn.ConvTranspose3d)


def round_up(channels: int, multiple: int) -> int:
    return -(-channels // multiple) * multiple


def _index(segments: Segments) -> tuple[torch.Tensor, int]:
    """Destination of every real channel in the padded layout, and the padded total."""
    parts, offset = [], 0
    for real, padded in segments:
        if padded < real:
            raise ValueError(f"segment ({real}, {padded}) would shrink")
        parts.append(torch.arange(offset, offset + real))
        offset += padded
    return torch.cat(parts), offset


def _widen(t: torch.Tensor, dim: int, segments: Segments, fill: float = 0.0) -> torch.Tensor:
    index, total = _index(segments)
    if index.numel() != t.shape[dim]:
        raise ValueError(f"segments {list(segments)} describe {index.numel()} channels, tensor has {t.shape[dim]}")
    shape = list(t.shape)
    shape[dim] = total
    out = t.new_full(shape, fill)
    return out.index_copy_(dim, index.to(t.device), t.detach())


def _same(segments: Segments) -> bool:
    return all(real == padded for real, padded in segments)


def widen_conv_(conv: nn.Module, *, inputs: Segments | None = None, outputs: Segments | None = None) -> None:
    """Zero-widen a (transposed) convolution's input and/or output channels in place.

    A depthwise convolution (``groups == in == out``) takes ``outputs`` only and widens its groups.
    """
    inputs = inputs or [(conv.in_channels, conv.in_channels)]
    outputs = outputs or [(conv.out_channels, conv.out_channels)]
    if _same(inputs) and _same(outputs):
        return
    transposed = isinstance(conv, _TRANSPOSED)
    weight = conv.weight.data
    if conv.groups > 1:
        if not conv.groups == conv.in_channels == conv.out_channels or transposed:
            raise ValueError(f"only depthwise grouped convolutions can be widened, got {conv}")
        weight = _widen(weight, 0, outputs)
        conv.groups = weight.shape[0]
        conv.in_channels = conv.out_channels = weight.shape[0]
    else:
        out_dim, in_dim = (1, 0) if transposed else (0, 1)
        weight = _widen(_widen(weight, out_dim, outputs), in_dim, inputs)
        conv.in_channels, conv.out_channels = weight.shape[in_dim], weight.shape[out_dim]
    conv.weight = nn.Parameter(weight, requires_grad=conv.weight.requires_grad)
    if conv.bias is not None:
        conv.bias = nn.Parameter(_widen(conv.bias.data, 0, outputs), requires_grad=conv.bias.requires_grad)


def widen_linear_(linear: nn.Linear, *, inputs: Segments, outputs: Segments) -> None:
    weight = _widen(_widen(linear.weight.data, 0, outputs), 1, inputs)
    linear.in_features, linear.out_features = weight.shape[1], weight.shape[0]
    linear.weight = nn.Parameter(weight)
    if linear.bias is not None:
        linear.bias = nn.Parameter(_widen(linear.bias.data, 0, outputs))


def widen_norm_(norm: nn.Module | None, segments: Segments) -> None:
    """BatchNorm: padded channels normalise 0 to 0 (weight 0, bias 0, mean 0, var 1). Instance norm
    without affine parameters needs nothing (0 - mean(0) = 0); Identity / None pass through."""
    if norm is None or isinstance(norm, nn.Identity) or _same(segments):
        return
    if isinstance(norm, nn.modules.instancenorm._InstanceNorm) and not norm.affine:
        norm.num_features = _index(segments)[1]
        return
    if not isinstance(norm, nn.modules.batchnorm._BatchNorm):
        raise ValueError(f"cannot widen {type(norm).__name__} exactly (its statistics span the channels)")
    norm.weight = nn.Parameter(_widen(norm.weight.data, 0, segments))
    norm.bias = nn.Parameter(_widen(norm.bias.data, 0, segments))
    norm.running_mean = _widen(norm.running_mean, 0, segments)
    norm.running_var = _widen(norm.running_var, 0, segments, fill=1.0)
    norm.num_features = norm.weight.shape[0]


def _widen_unit_(unit: nn.Module, inputs: Segments | None, outputs: Segments | None) -> None:
    """A :class:`~skillbank.runtime.networks.common.blocks.ConvNormAct`: its conv and its norm."""
    widen_conv_(unit.conv, inputs=inputs, outputs=outputs)
    widen_norm_(unit.norm, outputs or [(unit.conv.out_channels,) * 2])


class ChannelWindow(nn.Module):
    """Run ``inner`` on the first ``real`` channels and zero-pad its output back to ``padded``
    (for layers whose statistics span the channels, e.g. the disparity transformer's LayerNorm)."""

    def __init__(self, inner: nn.Module, real: int, padded: int) -> None:
        super().__init__()
        self.inner, self.real, self.padded = inner, real, padded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.inner(x[:, :self.real])
        pad = [0, 0] * (y.dim() - 2) + [0, self.padded - self.real]
        return F.pad(y, pad)


def pad_channels_(model: nn.Module, multiple: int = 8, *, heads: bool = True, training: bool = False) -> nn.Module:
    """Widen every pruned width of a FastFoundationStereo to a multiple of ``multiple`` (see module doc).

    ``heads`` also widens the narrow prediction heads whose outputs the forward slices back (the
    3D classifier's and the disparity head's single output channel, the 9 upsampling logits): the
    extra output channels are computed and dropped, which cuDNN runs faster than 1 or 9 channels.
    Returns the model; a no-op for widths already aligned. Eval mode only.

    ``training=True`` declares that the padded model will be trained: every padded weight then gets
    an exact zero gradient (its input or its output channel is always 0 and nothing reads the
    other), so AdamW / SGD leave it at 0 and the padded network trains like the original. Its
    ``state_dict()`` / ``load_state_dict`` keep the original names and shapes (``model.padding_maps``).
    """
    from skillbank.runtime.networks.ffs.model import FastFoundationStereo

    if not isinstance(model, FastFoundationStereo):
        raise TypeError(f"pad_channels_ works on FastFoundationStereo, got {type(model).__name__}")
    if model.training and not training:
        raise ValueError("pad_channels_ is an inference transform: call model.eval() first "
                         "(or pass training=True to train the padded model)")
    if model.context_pad or model.lookup_pad or isinstance(model.cost_agg.post8_to_4.upsample[1], ChannelWindow):
        raise ValueError("the model's channels are already padded")

    maps = _padding_maps(model, multiple, heads) if training else None
    _pad(model, multiple, heads)
    if maps is not None:
        model.padding_maps = maps
        model.register_state_dict_post_hook(_original_state_dict)
        model.register_load_state_dict_pre_hook(_padded_state_dict)
    return model


def _pad(model: nn.Module, multiple: int, heads: bool) -> None:
    def seg(c: int) -> list[tuple[int, int]]:
        return [(c, round_up(c, multiple))]

    _pad_volume(model, seg)
    mask_out = _pad_update(model, seg, multiple)
    _pad_upsampling(model, seg, mask_out)
    if heads:
        for conv in (model.classifier[0], model.update_block.disp_head.conv[4], model.spx_gru[0]):
            widen_conv_(conv, outputs=seg(conv.out_channels))


class PaddingMap(NamedTuple):
    """Where a tensor of the original network lives in its padded counterpart."""

    original_name: str          # the state_dict key before padding (ChannelWindow adds ``inner.``)
    original_shape: torch.Size
    positions: torch.Tensor     # long: flat (row-major) position of every original entry, in order


def _padding_maps(model: nn.Module, multiple: int, heads: bool) -> dict[str, PaddingMap]:
    """Pad a copy whose float entries are ``2, 3, 4, ...`` (padding writes only 0 and 1) and read
    back where every original entry went: padded state_dict key -> :class:`PaddingMap`."""
    probe = copy.deepcopy(model).cpu().float()
    before = {}
    for name, t in probe.state_dict(keep_vars=True).items():
        if t.is_floating_point():
            if t.numel() + 2 > 2 ** 24:
                raise ValueError(f"{name}: {t.numel()} entries, too many to track exactly in float32")
            t.data.copy_(torch.arange(2, t.numel() + 2, dtype=torch.float32).view(t.shape))
            before[name] = t.shape
    _pad(probe, multiple, heads)
    maps = {}
    for name, t in probe.state_dict().items():
        original = name.replace(".inner.", ".")
        if not t.is_floating_point() or (name == original and t.shape == before.get(name)):
            continue
        if original not in before:
            raise RuntimeError(f"padded tensor {name} has no original ({original})")
        flat = t.reshape(-1)
        positions = torch.nonzero(flat >= 2).squeeze(1)
        ids = flat[positions].long() - 2
        order = torch.argsort(ids)
        if not torch.equal(ids[order], torch.arange(before[original].numel())):
            raise RuntimeError(f"padding of {original} did not keep every entry exactly once")
        maps[name] = PaddingMap(original, before[original], positions[order])
    return maps


def unpad_tensor(t: torch.Tensor, m: PaddingMap) -> torch.Tensor:
    """The original-shape tensor inside padded ``t``."""
    return t.reshape(-1)[m.positions.to(t.device)].view(m.original_shape)


def pad_tensor(original: torch.Tensor, m: PaddingMap, template: torch.Tensor) -> torch.Tensor:
    """``template`` (padded shape: the padding's fill values) with ``original``'s entries written in."""
    flat = template.detach().reshape(-1).clone()
    flat[m.positions.to(flat.device)] = original.reshape(-1).to(flat)
    return flat.view(template.shape)


def _original_state_dict(module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    for name, m in module.padding_maps.items():
        t = state_dict.pop(prefix + name, None)
        if t is not None:
            state_dict[prefix + m.original_name] = unpad_tensor(t, m)


def _padded_state_dict(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    tensors = dict(module.named_parameters())
    tensors.update(dict(module.named_buffers()))
    for name, m in module.padding_maps.items():
        t = state_dict.get(prefix + m.original_name)
        if t is not None and t.shape == m.original_shape:
            state_dict.pop(prefix + m.original_name)
            state_dict[prefix + name] = pad_tensor(t, m, tensors[name])


def _pad_volume(model: nn.Module, seg) -> None:  # noqa: ANN001
    """The 3D cost volume at ``volume_dim`` channels (1/4 and 1/8) through the hourglass to the classifier."""
    c = model.volume_dim
    v = seg(c)
    if _same(v):
        return
    cfa, hg = model.corr_feature_att, model.cost_agg
    _widen_unit_(cfa[0], None, v)
    _widen_unit_(cfa[1], v, v)
    widen_conv_(cfa[2].feat_att[1], outputs=v)              # image gate: sigmoid(0) * 0 = 0
    _widen_unit_(hg.feature_att_8.layers[0], v, v)
    widen_conv_(hg.feature_att_8.layers[1].conv1[0], inputs=v)
    _widen_unit_(hg.conv1_up, None, v)
    _widen_unit_(hg.post8_to_4.upsample[0], v, v)
    hg.post8_to_4.upsample[1] = ChannelWindow(hg.post8_to_4.upsample[1], c, v[0][1])
    _widen_unit_(hg.post8_to_4.out[0], v, v)
    res = hg.post8_to_4.out[1]
    widen_conv_(res.conv1, inputs=v, outputs=v)
    widen_norm_(res.bn1, v)
    widen_conv_(res.conv2, inputs=v, outputs=v)
    widen_norm_(res.bn2, v)
    widen_conv_(model.classifier[0], inputs=v)


def _pad_update(model: nn.Module, seg, multiple: int) -> Segments:  # noqa: ANN001
    """GRU hidden, gating, motion encoder, disparity and mask heads; the context and lookup inputs.
    Returns the mask features' layout (the upsampling head reads them)."""
    ub = model.update_block
    gru, enc, head = ub.gru04, ub.encoder, ub.disp_head.conv
    hidden = seg(model.cnet.conv04[0].conv.out_channels)
    g0 = seg(gru.conv0[0].out_channels)
    g1 = seg(gru.conv1[0].out_channels)
    ctx = model.cnet.conv04[1].conv.out_channels
    motion = enc.conv.out_channels + 1                       # motion features + the raw disparity
    context_pad = round_up(ctx + motion, multiple) - (ctx + motion)
    lookup = enc.convc1.in_channels
    lookup_pad = round_up(lookup, multiple) - lookup
    c1, c2 = seg(enc.convc1.out_channels), seg(enc.convc2.out_channels)
    d1, d2 = seg(enc.convd1.out_channels), seg(enc.convd2.out_channels)

    _widen_unit_(model.cnet.conv04[0], None, hidden)                         # GRU hidden init (tanh)
    widen_conv_(enc.convc1, inputs=[(lookup, lookup + lookup_pad)], outputs=c1)
    widen_conv_(enc.convc2, inputs=c1, outputs=c2)
    # the 1-channel disparity input too (8 channels keep the 7x7 conv on cuDNN's aligned channels-last
    # kernels; not timed alone); the motion encoder pads its input to match
    widen_conv_(enc.convd1, inputs=seg(enc.convd1.in_channels), outputs=d1)
    widen_conv_(enc.convd2, inputs=d1, outputs=d2)
    widen_conv_(enc.conv, inputs=[*c2, *d2])            # its output sits in the GRU input next to the context
    widen_conv_(gru.conv0[0], inputs=[(ctx, ctx + context_pad), (motion, motion)], outputs=g0)
    widen_conv_(gru.conv1[0], inputs=[*g0, *hidden], outputs=g1)
    for cell in (gru.small_gru, gru.large_gru):
        widen_conv_(cell.convz, inputs=g1, outputs=hidden)
        widen_conv_(cell.convr, inputs=g1, outputs=hidden)
        widen_conv_(cell.convq, inputs=[*hidden, *g0], outputs=hidden)
    mid = seg(head[0].out_channels)
    widen_conv_(head[0], inputs=hidden, outputs=mid)
    for block in (head[2], head[3]):
        if block.norm is not None:
            raise ValueError("disparity-head blocks with a LayerNorm cannot be padded exactly")
        mlp = seg(block.pwconv1.out_features)
        widen_conv_(block.dwconv, outputs=mid)
        widen_linear_(block.pwconv1, inputs=mid, outputs=mlp)
        widen_linear_(block.pwconv2, inputs=mlp, outputs=mid)
        block.gamma = nn.Parameter(_widen(block.gamma.data, 0, mid))
    widen_conv_(head[4], inputs=mid)
    m0, m1 = seg(ub.mask[0].out_channels), seg(ub.mask[2].out_channels)
    widen_conv_(ub.mask[0], inputs=hidden, outputs=m0)
    widen_conv_(ub.mask[2], inputs=m0, outputs=m1)
    model.context_pad, model.lookup_pad = context_pad, lookup_pad
    return m1


def _pad_upsampling(model: nn.Module, seg, mask_out: Segments) -> None:  # noqa: ANN001
    """The stride-2 image stem and the convex-upsampling head (its 9 logits stay 9)."""
    stem, spx = model.stem_2, model.spx_2_gru
    s0, s1 = seg(stem[0].conv.out_channels), seg(stem[1].out_channels)
    _widen_unit_(stem[0], None, s0)
    widen_conv_(stem[1], inputs=s0, outputs=s1)
    widen_norm_(stem[2], s1)
    mid = seg(spx.conv1.conv.out_channels)
    _widen_unit_(spx.conv1, mask_out, mid)
    out = seg(spx.conv2.conv.out_channels)
    _widen_unit_(spx.conv2, [*mid, *s1], out)
    widen_conv_(model.spx_gru[0], inputs=out)
