"""Build a depth network from the spec's ``model`` section.

``build_network(model_cfg)`` dispatches on ``model_cfg.model_type`` and imports the network
module lazily, so importing the factory stays cheap and never pulls in pydantic or the specs.
"""

from __future__ import annotations

from typing import Any

from torch import nn

STEREO_TYPES = ("FoundationStereo", "FastFoundationStereo")
MONO_TYPES = ("MetricDepthAnything", "RelativeDepthAnything")


def build_network(model_cfg: Any, *, max_depth: float | None = None) -> nn.Module:
    """Return the network for ``model_cfg.model_type``.

    Args:
        model_cfg: the spec's ``model`` section (``ModelConfig`` or any object with the same
            attribute names).
        max_depth: metric depth range, used by ``MetricDepthAnything`` only.
    """
    model_type = getattr(model_cfg, "model_type", None)
    if model_type == "FastFoundationStereo":
        from skillbank.runtime.networks.ffs.model import FastFoundationStereo
        return FastFoundationStereo(model_cfg)
    if model_type == "FoundationStereo":
        from skillbank.runtime.networks.foundation_stereo.model import FoundationStereo
        return FoundationStereo(model_cfg)
    if model_type in MONO_TYPES:
        from skillbank.runtime.networks.depth_anything.model import DepthAnythingV2
        return DepthAnythingV2(model_cfg, metric=model_type == "MetricDepthAnything", max_depth=max_depth)
    raise ValueError(f"unknown model.model_type {model_type!r}; expected one of "
                     f"{', '.join(STEREO_TYPES + MONO_TYPES)}")
