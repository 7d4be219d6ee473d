"""What evaluate and inference share: the model or engine to run, the fast path, prediction, output names."""
