"""What FastFoundationStereo and FoundationStereo share: layers, the EdgeNeXt pyramid, cost volumes and
their lookup, the disparity transformer, the update layers, convex upsampling, padding."""
