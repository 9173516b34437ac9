"""The prepared GPU run (`scripts/gpu_run.py`): its steps, its GPU benchmark and its markdown summary."""
