"""depth_net runtime: networks, data, actions (train, evaluate, inference, export, convert)."""
