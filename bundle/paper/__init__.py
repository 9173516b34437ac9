"""Reproduce the paper: baselines, the method comparison, the ablations, timing, and the regenerable report."""
