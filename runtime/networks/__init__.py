"""Stereo and mono networks: FastFoundationStereo, FoundationStereo, DepthAnythingV2."""
