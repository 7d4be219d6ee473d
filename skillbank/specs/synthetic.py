"""``convert.synthetic``: the knobs of the procedural stereo generator (``depth_net convert`` with
``convert.mode: synthetic``). Defaults serve training: outdoor and indoor layouts, curved and slanted
surfaces, thin structures, untextured areas and per-view photometry in the proportions below."""

from __future__ import annotations

from pydantic import field_validator

from skillbank.specs.base import SpecSection
from skillbank.specs.fields import spec_field


def _range(default: list[float], description: str) -> list[float]:
    return spec_field(default_factory=lambda: list(default), description=description)


class SyntheticConfig(SpecSection):
    """Scene layout, surfaces, textures and photometry of the synthetic stereo generator."""

    disparity_scale: list[float] = _range(
        [0.15, 1.0], "[lo, hi] fraction of max_disparity that a scene's nearest surfaces reach (uniform)."
    )
    ground_prob: float = spec_field(0.6, "Probability of a ground plane receding to a horizon.", ge=0, le=1)
    sky_prob: float = spec_field(0.7, "With a ground plane: probability of sky (else far field) above it.", ge=0, le=1)
    objects: list[int] = spec_field(default_factory=lambda: [4, 14], description="[min, max] objects per scene.")
    standing_prob: float = spec_field(
        0.5, "With a ground plane: probability an object stands on it (at the ground's disparity).", ge=0, le=1
    )
    slanted_prob: float = spec_field(0.4, "Probability a flat object is slanted (any orientation).", ge=0, le=1)
    max_slant: float = spec_field(0.5, "Largest |dd/dx| and |dd/dy| of a slanted plane (px per px).", ge=0, le=0.9)
    curved_prob: float = spec_field(0.3, "Probability an object is curved (dome or cylinder).", ge=0, le=1)
    thin_structures: list[int] = spec_field(
        default_factory=lambda: [0, 4], description="[min, max] poles and wires (1..4 px wide) per scene."
    )
    untextured_prob: float = spec_field(0.15, "Share of surfaces with a flat colour (no texture).", ge=0, le=1)
    pattern_prob: float = spec_field(0.15, "Share of surfaces with repeated patterns (stripes, grids).", ge=0, le=1)
    photo_prob: float = spec_field(
        0.25, "Share of surfaces textured with photographs bundled in scikit-image (if installed).", ge=0, le=1
    )
    texture_seed: int = spec_field(0, "Seed of the texture bank (shared by all pairs).", ge=0)
    exposure: float = spec_field(0.15, "Std of each view's log exposure gain.", ge=0, le=1)
    gamma: float = spec_field(0.1, "Std of each view's log gamma.", ge=0, le=1)
    vignetting: float = spec_field(0.3, "Largest radial fall-off at the corners (0 = none).", ge=0, le=0.9)
    specular_prob: float = spec_field(0.3, "Probability of specular highlights (view-dependent).", ge=0, le=1)
    blur_sigma: float = spec_field(1.0, "Largest Gaussian blur sigma of a view (px).", ge=0, le=5)
    noise_sigma: float = spec_field(3.0, "Largest sensor noise std (8-bit levels).", ge=0, le=30)
    rectification_px: float = spec_field(
        0.3, "Std of the right view's vertical misalignment (px; the GT does not follow it).", ge=0, le=3
    )

    @field_validator("disparity_scale")
    @classmethod
    def _scale(cls, v: list[float]) -> list[float]:
        if len(v) != 2 or not 0 < v[0] <= v[1] <= 1:
            raise ValueError(f"expected [lo, hi] with 0 < lo <= hi <= 1, got {v}")
        return v

    @field_validator("objects", "thin_structures")
    @classmethod
    def _counts(cls, v: list[int]) -> list[int]:
        if len(v) != 2 or not 0 <= v[0] <= v[1] <= 64:
            raise ValueError(f"expected [min, max] with 0 <= min <= max <= 64, got {v}")
        return v
