"""Shared fixtures: tiny simulated datasets, built once per test session."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
# under pytest-xdist (`-n 2`) each worker takes one core, so that two workers do not fight over two
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Four subjects of the 'tiny' preset, 16 slices each, at DRF 20 and 200 (`image` is DRF 200; shared, read-only
    for tests)."""
    from bundle.simulation import SimulationConfig, simulate_dataset

    out = tmp_path_factory.mktemp("tiny_dataset")
    config = SimulationConfig(preset="tiny", slices=16, n_subjects=4, seed=3, drfs=(20.0, 200.0), device="cpu")
    simulate_dataset(out, config, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_trained(tiny_dataset, tmp_path_factory) -> Path:
    """One epoch of the real training config (fold 0, 4-wide network) on the tiny dataset; read-only for tests
    (copy it before writing into it). Holds `checkpoints/{model,best,last}.pt`."""
    from helpers import tiny_overrides
    from monai.bundle import ConfigWorkflow

    out = tmp_path_factory.mktemp("tiny_trained")
    wf = ConfigWorkflow(
        config_file=str(REPO_ROOT / "configs" / "train.json"),
        workflow_type=None,
        logging_file=False,
        **tiny_overrides(tiny_dataset, out),
    )
    wf.initialize()
    wf.run()
    return out


@pytest.fixture(autouse=True)
def _log_handlers_keep_an_open_stream():
    """Libraries (MONAI, torch, mlflow, nibabel) give their loggers a stream handler when first imported, bound to
    whatever sys.stdout or sys.stderr was then; imported inside a test that captures output, that is the test's own
    stream, closed when the test ends, and a later test that logs through them gets a 'Logging error' on its stderr.
    After each test, such handlers are pointed at the session's stderr."""
    yield
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and getattr(handler.stream, "closed", False):
                handler.stream = sys.stderr  # not setStream: it would flush the closed one first
