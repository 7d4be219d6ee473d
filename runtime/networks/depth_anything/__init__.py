"""DepthAnythingV2: the DINOv2 ViT (vit.py), the DPT head (dpt.py) and the network (model.py)."""
