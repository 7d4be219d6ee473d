"""The base class of every spec section: strict keys, assignment validation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SpecSection(BaseModel):
    """A section of the depth_net experiment spec.

    Unknown keys are errors (``extra="forbid"``): a typo such as ``train.optim.lrr`` must never be
    silently ignored, which is how TAO-style YAML specs lose hours of GPU time.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_default=False)
