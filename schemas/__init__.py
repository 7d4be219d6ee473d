"""Package data: the schemas/ folder, shipped inside the wheel."""
