"""Package data: the skills/ folder, shipped inside the wheel."""
