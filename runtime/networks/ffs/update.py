"""FFS stage 5, refinement: the update block of one GRU level at 1/4 resolution.

One iteration at 1/4 resolution (bp2 widths in brackets):
  motion = MotionEncoder(disp, lookup)        lookup (522) -> 1x1 (56) -> 3x3 (96);
                                              disp -> 7x7 (16) -> 3x3 (12); fuse 3x3 (48) + disp = 49
  x      = cat(context input (48), motion)    97 channels; conv0's share of the context is the same in
                                              every iteration: computed once (``context_share``)
  h      = SelectiveConvGRU(att, h, x)        conv0 3x3 -> 100, conv1 on cat(x, h) -> 168; a 1x1 and a
                                              3x3 GRU share those inputs, blended by the spatial
                                              attention map: att * small + (1 - att) * large
  delta  = DispHead(h)                        3x3 (36), ReLU, 2 EdgeNeXt blocks (no norm), 3x3 -> 1
  mask   = 0.25 * Mask(h)                     3x3 (32), ReLU, 3x3 (16), ReLU: upsampling features
                                              (:meth:`SelectiveUpdateBlock.mask_features`, after the loop)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from skillbank.runtime.networks.common.update_layers import DispHead, MotionEncoder, SelectiveConvGRU
from skillbank.runtime.networks.speed.layer_ops import PLAIN, LayerOps, tag_layers


class SelectiveUpdateBlock(nn.Module):
    """One GRU level at 1/4 resolution (n_gru_layers 1). Returns (hidden, mask features, delta)."""

    def __init__(self, *, lookup_channels: int, hidden: int, context_channels: int,
                 motion_widths: list[int], motion_final: int, gating_widths: list[int],
                 head_hidden: int, head_pwconv1_widths: list[int], mask_widths: list[int]) -> None:
        super().__init__()
        self.encoder = MotionEncoder(lookup_channels, motion_widths, motion_final)
        self.gru04 = SelectiveConvGRU(hidden, context_channels + motion_final + 1, gating_widths)
        self.disp_head = DispHead(hidden, head_hidden, head_pwconv1_widths)
        self.mask = nn.Sequential(
            nn.Conv2d(hidden, mask_widths[0], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(mask_widths[0], mask_widths[1], 3, padding=1), nn.ReLU(inplace=True))
        tag_layers(self, exclude=("mask",))      # the mask head runs after the loop, batched

    def forward(self, net: torch.Tensor, context: torch.Tensor, corr: torch.Tensor, disp: torch.Tensor,
                att: torch.Tensor, ops: LayerOps = PLAIN, context_pad: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(new hidden state, disparity delta). ``context``: :meth:`context_share` of the context
        features (the GRU input's leading channels, the same in every iteration); ``context_pad``: zero
        channels between them and the motion features (a channel-padded network's: the GRU's first
        convolution then reads the zeros and the motion features, a multiple of 8 channels). ``ops``:
        :data:`PLAIN`, or a :class:`~speed.layer_ops.TappedOps` (deferred weight gradients). The upsampling
        features of the new hidden state are :meth:`mask_features`' (nothing in them feeds back into
        the loop: the network computes them for all iterations at once, after it)."""
        motion = self.encoder(disp, corr, ops)
        if context_pad:
            motion = F.pad(motion, (0, 0, 0, 0, context_pad, 0))
        net = self.gru04(att, net, motion, ops, context=context)
        return net, self.disp_head(net, ops)

    def fused_layers(self) -> list[list[nn.Conv2d]]:
        """The layers the update applies as one fused convolution (:meth:`~speed.layer_ops.LayerOps.conv`):
        each GRU's z and r gates."""
        return [gru.gates for gru in (self.gru04.small_gru, self.gru04.large_gru)]

    def context_share(self, context: torch.Tensor) -> torch.Tensor:
        """The GRU's first convolution's share of the context features (B, C, h, w), once per forward."""
        return self.gru04.context_share(context)

    def context_skips(self, context_pad: int = 0) -> dict[str, int]:
        """``grad_key`` -> input channels left out (:meth:`~speed.layer_ops.LayerOps.conv`'s ``skip``) in every
        iteration (:meth:`forward` with this ``context_pad``): the GRU's first convolution reads the
        motion features, the raw disparity and ``context_pad`` zeros; the rest of its input channels
        are the context's (:meth:`context_share`)."""
        conv0 = self.gru04.conv0[0]
        if not hasattr(conv0, "grad_key"):
            return {}
        return {conv0.grad_key: conv0.in_channels - (self.encoder.conv.out_channels + 1 + context_pad)}

    def mask_features(self, net: torch.Tensor) -> torch.Tensor:
        """``0.25 * mask(net)``: the convex-upsampling features of hidden states ``net`` (B, hidden, h, w)
        (any number of iterations' states concatenated along the batch)."""
        return 0.25 * self.mask(net)
