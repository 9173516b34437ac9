"""Command-line entry points (the files in scripts/ call these)."""
