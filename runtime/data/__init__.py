"""Data path: image/disparity I/O, annotation files, datasets, augmentation, synthetic pairs."""
