"""Package data: the references/ folder, shipped inside the wheel."""
