"""Ignite glue for the bundle's workflows: masked metrics, resumable atomic checkpoints, RNG state, MLflow."""
