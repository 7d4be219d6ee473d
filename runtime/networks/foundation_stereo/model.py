"""FoundationStereo (FS): the teacher stereo network, ViT-S/B/L side-tuned features + 3D cost filtering + GRU.

Pipeline (1/4 resolution unless said; D = max_disparity / 4):
1. Pad left and right (centred, replicate) to a multiple of 32; run :class:`~.features.FSFeature` on
   both (EdgeNeXt + frozen DepthAnythingV2 fused at 1/4, pyramid ``d_out``).
2. Cost volume: group-wise cosine correlation (``cv_group`` groups) + concat volume of 12-ch projections
   (``proj_cmb``) -> ``corr_stem`` (1x1x1 conv to ``volume_dim``, ConvNormAct, two 3D residual blocks) ->
   gated by the 1/4 feature (``corr_feature_att``) -> hourglass + Disparity Transformer (``cost_agg``).
3. ``classifier`` (3D conv to ``classifier_mid``, residual block, 7x7x7 conv to 1) -> softmax over D ->
   soft-argmin initial disparity.
4. Context: :class:`~.features.ContextNetDino` on the left image + ViT feature; hidden = tanh, input =
   relu gated by channel attention; spatial attention maps blend the small/large GRUs.
5. ``iters`` refinement steps: lookup (``GeoEncodingLookup``) -> update block -> disparity += delta.
6. Convex upsampling x4: ``stem_2`` (stride-2 image stem) and the mask features meet in ``spx_2_gru``;
   ``spx_gru`` (transposed conv) gives 9 weights per full-res pixel; softmax; weighted 3x3 neighbourhood.

Forward contract: ``forward(left, right, iters=None, test_mode=False)`` on ImageNet-normalised float
(B,3,H,W), any H, W. ``test_mode``: final disparity (B,1,H,W) >= 0. Training: ``(init_disp, disp_preds)``
as TAO returns them: init_disp the soft-argmin disparity at 1/4 resolution in 1/4-resolution pixels
(B,1,ceil(H/4),ceil(W/4)), disp_preds one full-res prediction per iteration.
``iters`` defaults to ``valid_iters`` in test mode, ``train_iters`` otherwise.
The refinement input is detached each iteration (the classifier learns only from a loss on init_disp).

Widths: the 15 FFS width fields are honoured when set, else the FS teacher widths are used (see
docs/networks.md, "The 15 width fields"). The frozen ViT (``feature.dino``) never trains: requires_grad False,
always in eval mode, run under no_grad. ``stereo_backbone.depth_anything_v2_pretrained_path`` (a local file
in upstream DepthAnythingV2 key layout) is loaded into it when set.

Not used by the forward but kept so upstream checkpoints load strictly: ``context_zqr_convs``, ``stem_4``,
``cnet.down``, ``cnet.norm``, the context heads above ``n_gru_layers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from skillbank.runtime.networks.common.blocks import ConvNormAct, FeatureAtt, InstanceNorm2d, ResidualBlock
from skillbank.runtime.networks.common.conv3d import Conv3d
from skillbank.runtime.networks.common.cost_volume import GeoEncodingLookup, build_concat_volume, build_gwc_volume
from skillbank.runtime.networks.common.padding import pad_to_multiple, unpad, unpad_quarter
from skillbank.runtime.networks.common.update_layers import ChannelAttention, SpatialAttention
from skillbank.runtime.networks.common.upsample import build_spx_2_gru, build_spx_gru, build_stem_2, convex_upsample
from skillbank.runtime.networks.foundation_stereo.features import ContextNetDino, FSFeature, vit_feature_dim
from skillbank.runtime.networks.foundation_stereo.hourglass import ATTENTION_LAYOUTS, FSHourglass
from skillbank.runtime.networks.foundation_stereo.update import BasicSelectiveMultiUpdateBlock, UpdateWidths

PAD_MULTIPLE = 32
CONCAT_CHANNELS = 12  # proj_cmb width: the concat volume has 2 * 12 channels


def _field(cfg: Any, name: str, default: Any) -> Any:
    value = getattr(cfg, name, None)
    return default if value is None else value


@dataclass(frozen=True)
class FSWidths:
    """Every width FoundationStereo builds with, resolved from the config (teacher widths by default)."""

    hidden: int
    context: int
    motion: tuple[int, int, int, int]
    motion_final: int
    gating04: tuple[int, int] | None
    disp_mid: int
    disp_pw: tuple[int, int]
    mask: tuple[int, int]
    stem_2: tuple[int, int]
    spx_2_gru: tuple[int, int, int, int]
    classifier_mid: int
    cam_mid: int
    patch_padding: tuple[int, int, int]

    @classmethod
    def from_config(cls, cfg: Any, volume_dim: int) -> FSWidths:
        hidden_dims = list(_field(cfg, "hidden_dims", [128, 128, 128]))
        hidden = int(_field(cfg, "gru_hidden", hidden_dims[0]))
        if getattr(cfg, "gru_hidden", None) is None and len(set(hidden_dims)) > 1:
            raise ValueError(f"hidden_dims: FoundationStereo uses one GRU width for all levels, got {hidden_dims}")
        cnet04 = list(_field(cfg, "cnet_conv04_widths", [hidden, hidden]))
        if cnet04[0] != hidden:
            raise ValueError(f"cnet_conv04_widths[0] ({cnet04[0]}) must equal gru_hidden ({hidden})")
        disp_in = int(_field(cfg, "disp_head_input_dim", hidden))
        if disp_in != hidden:
            raise ValueError(f"disp_head_input_dim ({disp_in}) must equal gru_hidden ({hidden})")
        disp_mid = int(_field(cfg, "disp_head_intermediate", hidden))
        gating = getattr(cfg, "gru_gating_conv_widths", None)
        mask = tuple(_field(cfg, "mask_widths", [64, 32]))
        stem_2 = tuple(_field(cfg, "stem_2_widths", [32, 32]))
        spx = tuple(_field(cfg, "spx_2_gru_widths", [mask[1], 32, stem_2[1], 64]))
        if spx[0] != mask[1]:
            raise ValueError(f"spx_2_gru_widths[0] ({spx[0]}) must equal mask_widths[1] ({mask[1]})")
        if spx[2] != stem_2[1]:
            raise ValueError(f"spx_2_gru_widths[2] ({spx[2]}) must equal stem_2_widths[1] ({stem_2[1]})")
        spx_out = int(_field(cfg, "spx_gru_out", 9))
        if spx_out != 9:
            raise ValueError(f"spx_gru_out must be 9 (3x3 convex upsampling weights), got {spx_out}")
        return cls(
            hidden=hidden,
            context=int(cnet04[1]),
            motion=tuple(_field(cfg, "motion_encoder_widths", [256, 256, 64, 64])),
            motion_final=int(_field(cfg, "motion_encoder_final", hidden - 1)),
            gating04=tuple(gating) if gating is not None else None,
            disp_mid=disp_mid,
            disp_pw=tuple(_field(cfg, "disp_head_pwconv1_widths", [4 * disp_mid, 4 * disp_mid])),
            mask=mask,
            stem_2=stem_2,
            spx_2_gru=spx,
            classifier_mid=int(_field(cfg, "classifier_mid", volume_dim // 2)),
            cam_mid=int(_field(cfg, "cam_mid_channels", max(1, int(cnet04[1]) // 16))),
            patch_padding=tuple(_field(cfg, "cost_agg_conv_patch_padding", [0, 0, 0])),
        )


class FoundationStereo(nn.Module):
    """FoundationStereo for encoders vits / vitb / vitl (see the module docstring)."""

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        encoder = _field(cfg, "encoder", "vitl")
        self.max_disp = int(_field(cfg, "max_disparity", 416))
        if self.max_disp % 32:
            raise ValueError(f"max_disparity: {self.max_disp} must be a multiple of 32")
        self.n_gru_layers = int(_field(cfg, "n_gru_layers", 3))
        if not 1 <= self.n_gru_layers <= 3:
            raise ValueError(f"n_gru_layers: expected 1..3, got {self.n_gru_layers}")
        layout = _field(cfg, "disparity_attention_layout", "heads")
        if layout not in ATTENTION_LAYOUTS:
            raise ValueError(f"disparity_attention_layout {layout!r} is not one of {ATTENTION_LAYOUTS}")
        self.cv_group = int(_field(cfg, "cv_group", 8))
        self.corr_radius = int(_field(cfg, "corr_radius", 4))
        self.corr_levels = int(_field(cfg, "corr_levels", 2))
        self.train_iters = int(_field(cfg, "train_iters", 22))
        self.valid_iters = int(_field(cfg, "valid_iters", 22))
        volume_dim = int(_field(cfg, "volume_dim", 28))
        if volume_dim % 4:
            raise ValueError(f"volume_dim: {volume_dim} must be a multiple of 4 (4 attention heads)")
        w = FSWidths.from_config(cfg, volume_dim)
        self.widths = w
        backbone = getattr(cfg, "stereo_backbone", None)
        use_bn = bool(getattr(backbone, "use_bn", False))
        use_clstoken = bool(getattr(backbone, "use_clstoken", False))
        vit_dim = vit_feature_dim(encoder)

        self.cnet = ContextNetDino(
            vit_dim,
            [w.hidden] * 3,
            [w.context] * 3,
            n_downsample=int(_field(cfg, "n_downsample", 2)),
        )
        corr_planes = self.corr_levels * (2 * self.corr_radius + 1) * (volume_dim + 1)
        self.update_block = BasicSelectiveMultiUpdateBlock(
            UpdateWidths(
                corr_planes=corr_planes,
                hidden=w.hidden,
                context=w.context,
                motion=w.motion,
                motion_final=w.motion_final,
                gating04=w.gating04,
                disp_mid=w.disp_mid,
                disp_pw=w.disp_pw,
                mask=w.mask,
                n_gru_layers=self.n_gru_layers,
            )
        )
        self.sam = SpatialAttention()
        self.cam = ChannelAttention(w.context, w.cam_mid)
        zqr_dims = list(_field(cfg, "hidden_dims", [128, 128, 128]))  # upstream sizes these by hidden_dims
        self.context_zqr_convs = nn.ModuleList(
            nn.Conv2d(zqr_dims[i], zqr_dims[i] * 3, 3, padding=1) for i in range(self.n_gru_layers)
        )
        self.feature = FSFeature(encoder, use_bn, use_clstoken)
        d_out = self.feature.d_out
        self.proj_cmb = nn.Conv2d(d_out[0], CONCAT_CHANNELS, 1)
        self.stem_2 = build_stem_2(list(w.stem_2))
        self.stem_4 = nn.Sequential(  # unused upstream too; kept for strict loading
            ConvNormAct(w.stem_2[1], 48, conv="conv2d", norm="instance2d", kernel_size=3, stride=2, padding=1),
            nn.Conv2d(48, 48, 3, 1, 1, bias=False),
            InstanceNorm2d(48),
            nn.ReLU(),
        )
        self.spx_2_gru = build_spx_2_gru(list(w.spx_2_gru))
        self.spx_gru = build_spx_gru(w.spx_2_gru[3], 9)
        self.corr_stem = nn.Sequential(
            Conv3d(self.cv_group + 2 * CONCAT_CHANNELS, volume_dim, kernel_size=1),
            ConvNormAct(volume_dim, volume_dim, conv="conv3d", norm="batch3d", kernel_size=3, padding=1),
            ResidualBlock(volume_dim, volume_dim, dims=3, norm="batch3d"),
            ResidualBlock(volume_dim, volume_dim, dims=3, norm="batch3d"),
        )
        self.corr_feature_att = FeatureAtt(volume_dim, d_out[0])
        self.cost_agg = FSHourglass(volume_dim, d_out, self.max_disp, layout, w.patch_padding)
        mid = w.classifier_mid
        self.classifier = nn.Sequential(
            ConvNormAct(volume_dim, mid, conv="conv3d", norm="batch3d", kernel_size=3, padding=1),
            ResidualBlock(mid, mid, dims=3, norm="batch3d"),
            Conv3d(mid, 1, kernel_size=7, padding=3),
        )
        vit_path = getattr(backbone, "depth_anything_v2_pretrained_path", None)
        if vit_path:
            self.load_vit_weights(vit_path)

    def load_vit_weights(self, path: str | Path) -> None:
        """Load DepthAnythingV2 weights (upstream keys ``pretrained.*``, ``depth_head.*``) into the ViT."""
        self.feature.dino.depth_anything.load_upstream_file(
            path, field="stereo_backbone.depth_anything_v2_pretrained_path"
        )

    def upsample_disp(self, disp: torch.Tensor, mask_feat: torch.Tensor, stem_2x: torch.Tensor) -> torch.Tensor:
        """1/4-res disparity -> full resolution by learned convex combination (values x4)."""
        weights = F.softmax(self.spx_gru(self.spx_2_gru(mask_feat, stem_2x)).float(), dim=1)
        return convex_upsample(disp.float(), weights, 4)

    def forward(
        self, left: torch.Tensor, right: torch.Tensor, iters: int | None = None, test_mode: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        if left.shape != right.shape or left.dim() != 4 or left.shape[1] != 3:
            raise ValueError(
                f"FoundationStereo: expected left and right (B,3,H,W) of one shape, got "
                f"{tuple(left.shape)} and {tuple(right.shape)}"
            )
        if iters is None:
            iters = self.valid_iters if test_mode else self.train_iters
        if iters < 1:
            raise ValueError(f"FoundationStereo: iters must be >= 1, got {iters}")
        b, h, w = left.shape[0], left.shape[-2], left.shape[-1]
        left, pads = pad_to_multiple(left, PAD_MULTIPLE)
        right, _ = pad_to_multiple(right, PAD_MULTIPLE)

        features, vit_feat = self.feature(torch.cat((left, right), dim=0))
        feat_l = [f[:b] for f in features]
        feat_r = [f[b:] for f in features]
        vit_feat = vit_feat[:b]
        stem_2x = self.stem_2(left)

        d = self.max_disp // 4
        gwc = build_gwc_volume(feat_l[0], feat_r[0], d, self.cv_group, normalize=True).to(feat_l[0].dtype)
        concat = build_concat_volume(self.proj_cmb(feat_l[0]), self.proj_cmb(feat_r[0]), d)
        volume = self.corr_stem(torch.cat((gwc, concat), dim=1))
        volume = self.corr_feature_att(volume, feat_l[0])
        volume = self.cost_agg(volume, feat_l)
        prob = F.softmax(self.classifier(volume).squeeze(1).float(), dim=1)
        levels = torch.arange(d, dtype=prob.dtype, device=prob.device).view(1, d, 1, 1)
        init_disp = (prob * levels).sum(dim=1, keepdim=True)  # soft-argmin, 1/4-res pixels

        context = self.cnet(left, vit_feat, num_layers=self.n_gru_layers)
        net = [torch.tanh(h) for h, _ in context]
        inp = [torch.relu(c) for _, c in context]
        inp = [self.cam(x) * x for x in inp]
        att = [self.sam(x) for x in inp]

        with torch.autocast(left.device.type, enabled=False):
            lookup = GeoEncodingLookup(feat_l[0], feat_r[0], volume, self.corr_levels, self.corr_radius)
        disp = init_disp
        preds: list[torch.Tensor] = []
        for i in range(iters):
            disp = disp.detach()
            with torch.autocast(left.device.type, enabled=False):
                corr = lookup(disp)
            net, mask_feat, delta = self.update_block(net, inp, corr, disp, att)
            disp = disp + delta.float()
            if test_mode and i < iters - 1:
                continue
            preds.append(unpad(self.upsample_disp(disp, mask_feat, stem_2x), pads))

        if test_mode:
            return preds[-1].clamp_min(0.0)
        return unpad_quarter(init_disp, pads, h, w), preds
