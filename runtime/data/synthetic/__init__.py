"""Procedural stereo pairs with EXACT dense disparity, for tests, demos and training from scratch.

``textures`` (the texture bank) -> ``scene`` (layers with exact disparity fields, laid out like the
world's geometry) -> ``render`` (z-buffer in both views, exact GT, nocc) -> ``photometric`` (per-view
camera differences) -> ``writer`` (files and the annotation list, in parallel).
"""

from skillbank.runtime.data.synthetic.render import SyntheticPair, render_stereo_pair
from skillbank.runtime.data.synthetic.writer import generate_synthetic_stereo

__all__ = ["SyntheticPair", "render_stereo_pair", "generate_synthetic_stereo"]
