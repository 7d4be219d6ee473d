"""What makes the networks fast, apart from what they compute: the compiled regions and the seam the
model runs them through (regions.py), the training lookup, deferred weight gradients, gradient
layouts, channel padding, BatchNorm folding and the inference fast path."""
