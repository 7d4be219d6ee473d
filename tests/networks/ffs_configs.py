"""Model configs for the FFS tests: the bp2 block (docs/networks.md, "The bp2 spec block") and a tiny one."""

from __future__ import annotations

from types import SimpleNamespace

BP2 = dict(
    model_type="FastFoundationStereo", encoder="vitl", hidden_dims=[128], corr_radius=4, cv_group=8,
    train_iters=22, valid_iters=8, volume_dim=28, low_memory=0, mixed_precision=False, n_gru_layers=1,
    corr_levels=2, n_downsample=2, max_disparity=192, gwc_feature_normalize=True,
    disparity_attention_layout="heads",
    motion_encoder_widths=[56, 96, 16, 12], motion_encoder_final=48, gru_hidden=60,
    gru_gating_conv_widths=[100, 168], disp_head_input_dim=60, disp_head_intermediate=36,
    disp_head_pwconv1_widths=[212, 244], mask_widths=[32, 16], stem_2_widths=[12, 16],
    spx_2_gru_widths=[16, 12, 16, 24], spx_gru_out=9, classifier_mid=14, cnet_conv04_widths=[60, 48],
    cam_mid_channels=8, cost_agg_conv_patch_padding=[0, 0, 0],
)

TINY = dict(
    BP2, encoder="vits", volume_dim=8, max_disparity=64, valid_iters=3, train_iters=2,
    motion_encoder_widths=[16, 16, 8, 8], motion_encoder_final=12, gru_hidden=16,
    gru_gating_conv_widths=[24, 32], disp_head_input_dim=16, disp_head_intermediate=12,
    disp_head_pwconv1_widths=[24, 20], mask_widths=[12, 8], stem_2_widths=[8, 8],
    spx_2_gru_widths=[8, 8, 8, 12], cnet_conv04_widths=[16, 12], cam_mid_channels=4,
)


def config(base: dict, **overrides) -> SimpleNamespace:
    """A ``model`` section namespace (the attribute names of ``ModelConfig``)."""
    return SimpleNamespace(**{**base, **overrides})
