"""Benchmarking: measuring primitives (`measure`), tasks run in fresh processes for peak memory (`tasks`), and the
report behind `scripts/benchmark.py` (`report`)."""
