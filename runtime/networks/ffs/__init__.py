"""FastFoundationStereo: the pipeline (model.py) and its own stages (features, hourglass, update)."""
