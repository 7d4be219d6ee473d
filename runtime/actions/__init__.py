"""depth_net actions, one module each."""
