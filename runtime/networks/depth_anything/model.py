"""DepthAnythingV2: DINOv2 ViT encoder + DPT head, for metric or relative monocular depth.

``DepthAnythingV2(cfg, metric, max_depth)`` reads ``cfg.encoder`` and ``cfg.mono_backbone`` (``use_bn``,
``use_clstoken``) from the spec's ``model`` section. Submodules are ``pretrained`` (the ViT) and
``depth_head`` (the DPT head), as upstream names them, so DepthAnythingV2 checkpoints load with
``strict=True`` (see :meth:`DepthAnythingV2.load_upstream`); ``mono_backbone.pretrained_path`` (a local
file, never downloaded) is loaded at construction when set.

Input: ImageNet-normalised float (B,3,H,W), any H, W. The image is resized (bilinear) to the nearest
multiple of the 14-px patch when it is not one already, and the prediction is resized back (bilinear,
align_corners as upstream), which keeps the output's bounds. Output (B,1,H,W):
- metric: sigmoid * max_depth, depth in metres in (0, max_depth];
- relative: ReLU, affine-invariant inverse depth >= 0.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from skillbank.runtime.networks.depth_anything.dpt import DPT_CONFIGS, DPTHead
from skillbank.runtime.networks.depth_anything.vit import INTERMEDIATE_LAYERS, PATCH_SIZE, VIT_SPECS, build_vit


def _nearest_patch_multiple(n: int, patch: int = PATCH_SIZE) -> int:
    return max(patch, int(round(n / patch)) * patch)


class DepthAnythingV2(nn.Module):
    """Monocular depth network (see the module docstring for the contract)."""

    def __init__(self, cfg: Any, metric: bool = False, max_depth: float | None = None) -> None:
        super().__init__()
        encoder = getattr(cfg, "encoder", "vitl")
        if encoder not in VIT_SPECS:
            raise ValueError(f"model.encoder {encoder!r} is not one of {sorted(VIT_SPECS)}")
        if metric and (max_depth is None or max_depth <= 0):
            raise ValueError(f"MetricDepthAnything needs max_depth > 0 (metres), got {max_depth!r}")
        backbone = getattr(cfg, "mono_backbone", None)
        use_bn = bool(getattr(backbone, "use_bn", False))
        use_clstoken = bool(getattr(backbone, "use_clstoken", False))

        self.encoder = encoder
        self.metric = metric
        self.max_depth = float(max_depth) if metric else None
        self.intermediate_layer_idx = INTERMEDIATE_LAYERS[encoder]
        self.pretrained = build_vit(encoder)
        head = DPT_CONFIGS[encoder]
        self.depth_head = DPTHead(
            self.pretrained.embed_dim,
            head["features"],
            use_bn,
            out_channels=head["out_channels"],
            use_clstoken=use_clstoken,
            final_activation="sigmoid" if metric else "relu",
        )
        pretrained_path = getattr(backbone, "pretrained_path", None)
        if pretrained_path:
            self.load_upstream_file(pretrained_path)

    @classmethod
    def from_encoder(
        cls,
        encoder: str,
        *,
        metric: bool = False,
        max_depth: float | None = None,
        use_bn: bool = False,
        use_clstoken: bool = False,
    ) -> DepthAnythingV2:
        """Build without a spec config (FoundationStereo's frozen ViT branch uses this)."""
        cfg = SimpleNamespace(
            encoder=encoder, mono_backbone=SimpleNamespace(use_bn=use_bn, use_clstoken=use_clstoken)
        )
        return cls(cfg, metric=metric, max_depth=max_depth)

    @property
    def feature_dim(self) -> int:
        """Channels of :meth:`forward_features` (the DPT features / 2)."""
        return self.depth_head.scratch.output_conv1.out_channels

    def _encode(self, image: torch.Tensor) -> tuple[tuple, int, int]:
        h, w = (int(s) for s in image.shape[-2:])
        if h % PATCH_SIZE or w % PATCH_SIZE:
            raise ValueError(f"DepthAnythingV2: input {h}x{w} must be a multiple of {PATCH_SIZE}")
        layers = self.pretrained.get_intermediate_layers(
            image, self.intermediate_layer_idx, return_class_token=True
        )
        return layers, h // PATCH_SIZE, w // PATCH_SIZE

    def forward_features(self, image: torch.Tensor) -> torch.Tensor:
        """DPT features (B, feature_dim, H, W) of an image whose H, W are multiples of 14."""
        layers, ph, pw = self._encode(image)
        return self.depth_head.forward_features(layers, ph, pw)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"DepthAnythingV2: expected (B,3,H,W) input, got {tuple(image.shape)}")
        h, w = (int(s) for s in image.shape[-2:])
        size = (_nearest_patch_multiple(h), _nearest_patch_multiple(w))
        x = image if size == (h, w) else F.interpolate(image, size, mode="bilinear", align_corners=False)
        layers, ph, pw = self._encode(x)
        out = self.depth_head(layers, ph, pw)
        if size != (h, w):
            out = F.interpolate(out, (h, w), mode="bilinear", align_corners=True)
        return out * self.max_depth if self.metric else out

    def load_upstream_file(self, path: str | Path, field: str = "mono_backbone.pretrained_path") -> None:
        """Load a local upstream DepthAnythingV2 ``.pth`` (a bare state dict, or one under ``state_dict`` /
        ``model``). Relative and metric files share every tensor name, so either initialises either variant.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{field}: no file at {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        self.load_upstream(state, strict=True)

    def load_upstream(self, state_dict: dict[str, torch.Tensor], strict: bool = True) -> None:
        """Load an upstream DepthAnythingV2 state dict (keys ``pretrained.*``, ``depth_head.*``).

        A leading ``module.`` / ``model.`` (DDP or Lightning wrappers) is stripped first.
        """
        cleaned = {}
        for key, value in state_dict.items():
            for prefix in ("module.", "model."):
                if key.startswith(prefix):
                    key = key[len(prefix) :]
            cleaned[key] = value
        self.load_state_dict(cleaned, strict=strict)
