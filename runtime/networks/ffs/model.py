"""FastFoundationStereo (FFS): the distilled, pruned FoundationStereo, as TAO depth_net builds it.

Pipeline (bp2 widths; every width comes from the spec's ``model`` section), one stage per file:

1. Features: EdgeNeXt-small + decoder on left and right together -> pyramid [224, 192, 320, 304]
   at 1/4..1/32 (:mod:`.features`); a stride-2 stem on the left image for upsampling.
2. Cost volume at 1/4 with ``D = max_disparity // 4`` levels: group-wise cosine correlation
   (``cv_group`` groups, fp32) + concatenation of 12-channel projections (``proj_cmb``) -> 32 ch,
   reduced to ``volume_dim`` by ``corr_feature_att`` (two 3D convs + image gate)
   (:mod:`~skillbank.runtime.networks.common.cost_volume`, shared with FoundationStereo).
3. Filtering by the searched hourglass with its disparity transformer (:mod:`.hourglass`), then
   a single Conv3d classifier, softmax over D and soft-argmin: the initial disparity.
4. Context: two 3x3 Conv-BN-LeakyReLU heads on the 1/4 feature -> GRU hidden (tanh) and input
   (ReLU, channel attention); a spatial attention map blends the selective GRU.
5. Refinement, ``iters`` times at 1/4: detach the disparity, sample the filtered volume and
   the all-pairs correlation around it (``sample_lookup``), update (:mod:`.update`).
6. Learned 4x convex upsampling of every prediction (:mod:`~skillbank.runtime.networks.common.upsample`),
   all iterations' in one batch after the loop (nothing in it feeds back; test mode upsamples the
   last one only).

Input: ImageNet-normalised (B, 3, H, W) float images, any H and W (replicate-padded, centred,
to a multiple of 32 inside and cropped back). See :meth:`FastFoundationStereo.forward`.

The forward computes through ``_encode`` (1-4 and the lookup tables), ``_iteration`` (5: lookup,
``_update``) and ``_upsample`` (6), run by ``self.speed``
(:class:`~skillbank.runtime.networks.speed.regions.SpeedRunner`): the one seam to the speed
machinery, which decides whether each runs compiled and how a training forward's lookup and update
weight gradients are computed (the values are the same). What a layer edit must respect:
networks/README.md, "Changing a layer".

Fast paths (all exact up to rounding, all covered by tests; :mod:`skillbank.runtime.networks.speed`):
- ``torch.autocast`` (bf16/fp16) or ``model.mixed_precision``; or half-precision weights with
  ``model.to(torch.bfloat16)`` (no per-forward weight casts). Correlations, the lookup, the
  soft-argmin and the upsampling weights stay fp32 either way.
- ``model.to_channels_last()``: 2D weights channels_last, 3D weights channels_last_3d.
- ``fold_batchnorm_(model.eval())``: BatchNorm folded into convs (inference only).
- ``pad_channels_(model.eval())``: the pruned widths zero-padded to multiples of 8
  (inference only); ``optimize_for_inference`` applies all of these.
- The forward has no host syncs and no data-dependent Python branches: TorchDynamo captures it
  as one graph (``torch.compile(fullgraph=True)``) and it can be captured in a CUDA graph
  (training: :mod:`skillbank.runtime.training.graphed`).
- ``model.compile_regions()``: ``torch.compile`` of the encoder, of one refinement iteration
  (compiled once, reused ``iters`` times) and of the batched upsampling, instead of the whole
  unrolled forward.
- Training: the refinement lookups' gradients accumulate in one buffer per forward, zeroed once,
  instead of one tables-sized gradient per iteration; on CUDA the update block's weight gradients
  are computed outside the iterations' backward, batched over iterations on a side stream.
  ONNX export (opset 17, legacy exporter) works with dynamic batch and H/W (multiples of 32).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from skillbank.runtime.networks.common.blocks import ConvNormAct, FeatureAtt
from skillbank.runtime.networks.common.conv3d import Conv3d
from skillbank.runtime.networks.common.cost_volume import (
    LookupTables,
    build_concat_volume,
    build_gwc_volume,
    build_lookup_tables,
    sample_lookup,
)
from skillbank.runtime.networks.common.padding import pad_to_multiple, unpad, unpad_quarter
from skillbank.runtime.networks.common.update_layers import ChannelAttention, SpatialAttention
from skillbank.runtime.networks.common.upsample import (
    build_spx_2_gru,
    build_spx_gru,
    build_stem_2,
    convex_upsample,
)
from skillbank.runtime.networks.ffs.features import FFSFeature
from skillbank.runtime.networks.ffs.hourglass import FFSHourGlass
from skillbank.runtime.networks.ffs.update import SelectiveUpdateBlock
from skillbank.runtime.networks.speed.grad_layout import grad_in_layout, memory_format_of
from skillbank.runtime.networks.speed.layer_ops import PLAIN, LayerOps
from skillbank.runtime.networks.speed.regions import SpeedRunner

#: Half the DPT feature width of the teacher's DepthAnythingV2 encoder: the channel band the FFS
#: 1/4 feature keeps from distillation (224 = 96 + 128 for vitl).
VIT_FEATURE_DIM = {"vits": 32, "vitb": 64, "vitl": 128, "vitg": 192}
CONCAT_CHANNELS = 24
PAD_MULTIPLE = 32


class ConfigError(ValueError):
    """A model-config value that FastFoundationStereo cannot be built from."""


def _get(cfg: Any, name: str, default: Any = None) -> Any:
    value = getattr(cfg, name, default)
    return default if value is None else value


def _ints(cfg: Any, name: str, default: Sequence[int], length: int) -> list[int]:
    value = list(_get(cfg, name, default))
    if len(value) != length or not all(isinstance(v, int) and v > 0 for v in value):
        raise ConfigError(f"model.{name} must be {length} positive integers, got {value!r}")
    return value


class ContextHeads(nn.Module):
    """Two 3x3 Conv-BN-LeakyReLU heads on the shared 1/4 feature: GRU hidden init and GRU input."""

    def __init__(self, in_channels: int, widths: list[int]) -> None:
        super().__init__()
        self.conv04 = nn.ModuleList(
            ConvNormAct(in_channels, w, conv="conv2d", norm="batch2d", kernel_size=3, padding=1) for w in widths)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.conv04[0](x), self.conv04[1](x)


class FastFoundationStereo(nn.Module):
    """FFS stereo network built from a depth_net ``model`` config (pydantic model or namespace).

    Attributes a caller may change after construction:
        clamp_output: clamp the test-mode disparity at 0 (default ``True``). TAO returns the raw
            value; set ``False`` for bit-level comparisons with it.
        deferred_weight_grads: compute the refinement update's weight gradients outside the
            iterations' backward (:mod:`~skillbank.runtime.networks.speed.deferred_weight_grads`):
            ``None`` (default) on CUDA only.
    """

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg
        model_type = _get(cfg, "model_type", "FastFoundationStereo")
        if model_type != "FastFoundationStereo":
            raise ConfigError(f"model.model_type is {model_type!r}; FastFoundationStereo expected")
        encoder = _get(cfg, "encoder", "vitl")
        if encoder not in VIT_FEATURE_DIM:
            raise ConfigError(f"model.encoder must be one of {sorted(VIT_FEATURE_DIM)}, got {encoder!r}")
        if int(_get(cfg, "n_gru_layers", 1)) != 1:
            raise ConfigError(f"FastFoundationStereo runs one GRU level: model.n_gru_layers must be 1, "
                              f"got {cfg.n_gru_layers}")
        if int(_get(cfg, "n_downsample", 2)) != 2:
            raise ConfigError(f"FastFoundationStereo works at 1/4: model.n_downsample must be 2, "
                              f"got {cfg.n_downsample}")
        self.max_disparity = int(_get(cfg, "max_disparity", 192))
        if self.max_disparity <= 0 or self.max_disparity % 32:
            raise ConfigError(f"model.max_disparity must be a positive multiple of 32 (the 3D hourglass "
                              f"halves D = max_disparity/4 three times), got {self.max_disparity}")
        self.cv_group = int(_get(cfg, "cv_group", 8))
        self.volume_dim = int(_get(cfg, "volume_dim", 28))
        if self.volume_dim % 4:
            raise ConfigError(f"model.volume_dim must be divisible by the 4 attention heads, got {self.volume_dim}")
        self.corr_radius = int(_get(cfg, "corr_radius", 4))
        self.corr_levels = int(_get(cfg, "corr_levels", 2))
        self.train_iters = int(_get(cfg, "train_iters", 22))
        self.valid_iters = int(_get(cfg, "valid_iters", 8))
        self.normalize_gwc = bool(_get(cfg, "gwc_feature_normalize", True))
        self.mixed_precision = bool(_get(cfg, "mixed_precision", False))
        layout = _get(cfg, "disparity_attention_layout", "heads")
        self.clamp_output = True
        # compute the update block's weight gradients outside the compiled iteration's backward
        # (:mod:`~skillbank.runtime.networks.speed.deferred_weight_grads`); None: on CUDA only
        self.deferred_weight_grads: bool | None = None
        self.channels_last = False
        #: how the regions of the forward run (compiled or eager, the training lookup, deferred weight
        #: gradients): the one seam to the speed machinery, :mod:`~skillbank.runtime.networks.speed.regions`
        self.speed = SpeedRunner()
        # zero channels appended to the GRU context input and to the lookup features by
        # :func:`~skillbank.runtime.networks.speed.channel_padding.pad_channels_` (0: the network as built)
        self.context_pad = 0
        self.lookup_pad = 0

        hidden_dims = list(_get(cfg, "hidden_dims", [128]))
        gru_hidden = int(_get(cfg, "gru_hidden", hidden_dims[0]))
        cnet_widths = _ints(cfg, "cnet_conv04_widths", [gru_hidden, gru_hidden], 2)
        if cnet_widths[0] != gru_hidden:
            raise ConfigError(f"model.cnet_conv04_widths[0] ({cnet_widths[0]}) must equal model.gru_hidden "
                              f"({gru_hidden}): it initialises the GRU hidden state")
        head_input = int(_get(cfg, "disp_head_input_dim", gru_hidden))
        if head_input != gru_hidden:
            raise ConfigError(f"model.disp_head_input_dim ({head_input}) must equal model.gru_hidden ({gru_hidden})")
        head_hidden = int(_get(cfg, "disp_head_intermediate", head_input))
        motion_final = int(_get(cfg, "motion_encoder_final", gru_hidden - 1))
        mask_widths = _ints(cfg, "mask_widths", [64, 32], 2)
        stem_widths = _ints(cfg, "stem_2_widths", [32, 32], 2)
        spx_widths = _ints(cfg, "spx_2_gru_widths", [32, 32, 32, 32], 4)
        if mask_widths[1] != spx_widths[0]:
            raise ConfigError(f"model.mask_widths[1] ({mask_widths[1]}) must equal model.spx_2_gru_widths[0] "
                              f"({spx_widths[0]})")
        if stem_widths[1] != spx_widths[2]:
            raise ConfigError(f"model.stem_2_widths[1] ({stem_widths[1]}) must equal model.spx_2_gru_widths[2] "
                              f"({spx_widths[2]})")
        spx_out = int(_get(cfg, "spx_gru_out", 9))
        if spx_out != 9:
            raise ConfigError(f"model.spx_gru_out must be 9 (3x3 convex upsampling weights), got {spx_out}")
        gru_in = cnet_widths[1] + motion_final + 1

        self.feature = FFSFeature(VIT_FEATURE_DIM[encoder])
        d_out = self.feature.d_out
        if d_out[0] % self.cv_group:
            raise ConfigError(f"1/4 feature width {d_out[0]} is not divisible by model.cv_group ({self.cv_group})")
        self.proj_cmb = nn.Conv2d(d_out[0], CONCAT_CHANNELS // 2, kernel_size=1)
        self.cnet = ContextHeads(d_out[0], cnet_widths)
        self.stem_2 = build_stem_2(stem_widths)
        self.spx_2_gru = build_spx_2_gru(spx_widths)
        self.spx_gru = build_spx_gru(spx_widths[3], spx_out)
        self.corr_feature_att = nn.Sequential(
            ConvNormAct(CONCAT_CHANNELS + self.cv_group, self.volume_dim, conv="conv3d", norm="batch3d",
                        kernel_size=3, padding=1),
            ConvNormAct(self.volume_dim, self.volume_dim, conv="conv3d", norm="batch3d", kernel_size=3, padding=1),
            FeatureAtt(self.volume_dim, d_out[0]))
        self.cost_agg = FFSHourGlass(self.volume_dim, d_out, self.max_disparity, layout=layout)
        self.classifier = nn.Sequential(Conv3d(self.volume_dim, 1, kernel_size=3, padding=1))
        lookup_channels = self.corr_levels * (2 * self.corr_radius + 1) * (self.volume_dim + 1)
        self.update_block = SelectiveUpdateBlock(
            lookup_channels=lookup_channels, hidden=gru_hidden, context_channels=cnet_widths[1],
            motion_widths=_ints(cfg, "motion_encoder_widths", [256, 256, 64, 64], 4),
            motion_final=motion_final,
            gating_widths=_ints(cfg, "gru_gating_conv_widths", [gru_in, gru_in + gru_hidden], 2),
            head_hidden=head_hidden,
            head_pwconv1_widths=_ints(cfg, "disp_head_pwconv1_widths", [4 * head_hidden] * 2, 2),
            mask_widths=mask_widths)
        self.sam = SpatialAttention()
        self.cam = ChannelAttention(cnet_widths[1], int(_get(cfg, "cam_mid_channels", max(1, cnet_widths[1] // 16))))
        r = self.corr_radius
        self.register_buffer("dx", torch.arange(-r, r + 1, dtype=torch.int8).reshape(1, 1, 2 * r + 1, 1))

    def forward(self, left: torch.Tensor, right: torch.Tensor, iters: int | None = None,
                test_mode: bool = False):
        """Estimate the left-view disparity.

        Args:
            left, right: (B, 3, H, W) float, ImageNet-normalised ((u8/255 - mean) / std), any H, W.
            iters: refinement iterations; ``None`` uses ``valid_iters`` in test mode and
                ``train_iters`` otherwise.
            test_mode: return only the final disparity.

        Returns:
            test_mode: (B, 1, H, W) disparity in pixels (clamped at 0 unless ``clamp_output`` is off).
            otherwise: ``(init_disp, disp_preds)`` as TAO returns them: the soft-argmin disparity at
            1/4 resolution in 1/4-resolution pixels, (B, 1, ceil(H/4), ceil(W/4)), and ``iters``
            full-resolution predictions (B, 1, H, W).
        """
        self._check_inputs(left, right)
        if iters is None:
            iters = self.valid_iters if test_mode else self.train_iters
        if int(iters) < 1:
            raise ValueError(f"iters must be >= 1, got {iters}")
        device_type = left.device.type
        autocast = (torch.autocast(device_type, dtype=torch.bfloat16)
                    if self.mixed_precision and not torch.is_autocast_enabled(device_type)
                    else contextlib.nullcontext())
        left_p, pads = pad_to_multiple(left, PAD_MULTIPLE)
        right_p, _ = pad_to_multiple(right, PAD_MULTIPLE)
        with autocast:
            out = self._forward_padded(left_p, right_p, int(iters), test_mode)
        if test_mode:
            return unpad(out, pads)
        init_disp, preds = out
        h, w = left.shape[-2:]
        return unpad_quarter(init_disp, pads, h, w), [unpad(p, pads) for p in preds]

    def _forward_padded(self, left: torch.Tensor, right: torch.Tensor, iters: int, test_mode: bool):
        # weights may be stored in bf16/fp16 (``model.to(torch.bfloat16)``: no per-forward weight
        # casts); inputs and the fp32 lookup are then cast to that dtype. A no-op in fp32/autocast.
        wdtype = self.proj_cmb.weight.dtype
        left, right = left.to(wdtype), right.to(wdtype)
        run = self.speed.start(self, left.device)          # before the encoder (see SpeedRunner.start)
        tables, stem_2x, init_disp, net, context, att = run.encode(left, right)
        iteration = run.iteration(tables, context, att)

        disp = init_disp
        disps: list[torch.Tensor] = []
        nets: list[torch.Tensor] = []
        for i in range(iters):
            disp, net = iteration(disp, net)
            if not test_mode or i == iters - 1:
                disps.append(disp)
                nets.append(net)
        # the upsampling feeds nothing back into the loop: every iteration's runs as one batch
        # (larger kernels, one weight gradient instead of ``iters``)
        up = run.upsample(torch.cat(disps), torch.cat(nets), stem_2x)
        if test_mode:
            return up.clamp(min=0) if self.clamp_output else up
        return init_disp, list(up.split(left.shape[0]))

    def _encode(self, left: torch.Tensor, right: torch.Tensor):
        """Features, cost volume, hourglass, soft-argmin, context and the lookup tables of a padded batch."""
        b = left.shape[0]
        images = torch.cat([left, right], dim=0)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
            left = left.contiguous(memory_format=torch.channels_last)
        feats = self.feature(images)
        feat_left = [f[:b] for f in feats]
        feat_right = feats[0][b:]
        stem_2x = self.stem_2(left)

        volume = self.cost_agg(self._cost_volume(feats[0], feat_left[0], feat_right), feat_left)
        init_disp = self._soft_argmin(volume)
        net, context, att = self._context(feat_left[0])
        # the lookup reads the volume's real channels (a channel-padded volume carries zeros after them)
        tables = build_lookup_tables(feat_left[0], feat_right, volume[:, :self.volume_dim], self.corr_levels,
                                     self.corr_radius)
        return tables, stem_2x, init_disp, net, context, att

    def _cost_volume(self, feat: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """The gwc + concat volume of the 1/4 features ``feat`` (left and right stacked; ``left``,
        ``right``: its halves, the views the rest of the forward reads too), reduced and gated by the
        left image (``corr_feature_att``)."""
        num_disp = self.max_disparity // 4
        b = left.shape[0]
        proj = self.proj_cmb(feat)
        concat = build_concat_volume(proj[:b], proj[b:], num_disp)
        gwc = build_gwc_volume(left, right, num_disp, self.cv_group, self.normalize_gwc)
        # the fp32 correlation goes to the 3D convs' dtype now, not after a 32-channel fp32 concat
        volume = torch.cat([gwc.to(concat.dtype), concat], dim=1)
        if self.channels_last:
            volume = volume.contiguous(memory_format=torch.channels_last_3d)
        volume = self.corr_feature_att[1](self.corr_feature_att[0](volume))
        return self.corr_feature_att[2](volume, left)

    def _soft_argmin(self, volume: torch.Tensor) -> torch.Tensor:
        """The initial disparity (B, 1, h, w) in 1/4-resolution pixels: classifier, softmax over D,
        expectation (fp32)."""
        num_disp = self.max_disparity // 4
        # a padded classifier computes more; its output gradient in the volume's layout, not the
        # NCDHW one the selection's backward would make
        logits = grad_in_layout(self.classifier(volume), memory_format_of(volume))[:, 0]
        with torch.autocast(volume.device.type, enabled=False):
            prob = F.softmax(logits.float(), dim=1)
            levels = torch.arange(num_disp, device=prob.device, dtype=prob.dtype).view(1, num_disp, 1, 1)
            return (prob * levels).sum(dim=1, keepdim=True)

    def _context(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """GRU hidden state, the GRU's first convolution's share of the context input (once for all
        iterations) and the spatial attention map, from the left 1/4 feature."""
        net, inp = self.cnet(feat)
        net = torch.tanh(net)
        inp = torch.relu(inp)
        inp = self.cam(inp) * inp
        att = self.sam(inp)
        return net, self.update_block.context_share(inp), att

    def _iteration(self, tables: LookupTables, disp: torch.Tensor, net: torch.Tensor, context: torch.Tensor,
                   att: torch.Tensor):
        """One refinement step from the (detached) disparity: new disparity and hidden state."""
        disp = disp.detach()
        corr = sample_lookup(tables, disp, channels_last=self.channels_last, pad_channels=self.lookup_pad)
        return self._update(corr.to(self.proj_cmb.weight.dtype), disp, net, context, att)

    def _update(self, corr: torch.Tensor, disp: torch.Tensor, net: torch.Tensor, context: torch.Tensor,
                att: torch.Tensor, ops: LayerOps = PLAIN) -> tuple[torch.Tensor, torch.Tensor]:
        """The update of :meth:`_iteration` from its lookup features ``corr``: new disparity and hidden
        state. ``ops``: how the update block applies its layers (``PLAIN``, or the tapped ops of a
        training forward with deferred weight gradients)."""
        net, delta = self.update_block(net, context, corr, disp.to(self.proj_cmb.weight.dtype), att, ops,
                                       self.context_pad)
        return disp + delta.float(), net

    def _upsample(self, disp: torch.Tensor, net: torch.Tensor, stem_2x: torch.Tensor) -> torch.Tensor:
        """Full-resolution disparity of ``K`` iterations at once: ``disp`` (K*B, 1, h, w) and the GRU
        hidden states ``net`` (K*B, C, h, w), iteration-major, over the batch's ``stem_2x`` (B, ...),
        shared by all K."""
        mask = self.update_block.mask_features(net)
        logits = self.spx_gru(self.spx_2_gru(mask, stem_2x))
        if self.channels_last:     # (else the softmax's backward writes it NCHW, and cuDNN converts it)
            logits = grad_in_layout(logits, torch.channels_last)
        logits = logits[:, :9]                                             # a padded head computes more
        with torch.autocast(disp.device.type, enabled=False):
            weights = F.softmax(logits.float(), dim=1)
            return convex_upsample(disp.float(), weights)

    # ------------------------------------------------------------------ speed switches
    def compile_regions(self, **compile_kwargs: Any) -> FastFoundationStereo:
        """``torch.compile`` the regions of the forward (:data:`~skillbank.runtime.networks.speed.regions.REGIONS`,
        each on first use): the encoder (features, cost volume, hourglass, context, lookup tables; once
        per pair), one refinement iteration (lookup, update; ``iters`` times with the same shapes, so it
        compiles once) and the upsampling of every iteration's prediction in one batch. A training
        forward runs the iteration as three: the lookup's gather, the update, and in the backward the
        lookup's gradient scatter (:mod:`~skillbank.runtime.networks.speed.training_lookup`). Each
        compiles in seconds, where the whole unrolled forward (and its backward, 22 iterations in
        training) takes minutes.
        Keyword arguments go to ``torch.compile`` (e.g. ``mode="max-autotune-no-cudagraphs"``);
        ``fullgraph=True`` and ``dynamic=False`` are the defaults. Undo with ``compile_regions(off=True)``.
        ``training_only=True`` runs the compiled regions in train mode only: validation images of
        other sizes then run eagerly instead of compiling once per size (``train.compile``).
        """
        self.speed.compile(self, **compile_kwargs)
        return self

    def to_channels_last(self) -> FastFoundationStereo:
        """Store 2D conv weights channels_last and 3D ones channels_last_3d; inputs follow in forward."""
        for p in self.parameters():
            if p.dim() == 4:
                p.data = p.data.contiguous(memory_format=torch.channels_last)
            elif p.dim() == 5:
                p.data = p.data.contiguous(memory_format=torch.channels_last_3d)
        self.channels_last = True
        return self

    @staticmethod
    def _check_inputs(left: torch.Tensor, right: torch.Tensor) -> None:
        for name, t in (("left", left), ("right", right)):
            if not isinstance(t, torch.Tensor) or t.dim() != 4 or t.shape[1] != 3:
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"{name} image must be a (B, 3, H, W) tensor, got {shape}")
            if not t.is_floating_point():
                raise ValueError(f"{name} image must be float (ImageNet-normalised), got {t.dtype}")
        if left.shape != right.shape:
            raise ValueError(f"left and right shapes differ: {tuple(left.shape)} vs {tuple(right.shape)}")
