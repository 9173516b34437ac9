"""Helpers shared by the tests: tiny training overrides and running bundle commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def tiny_overrides(dataset: Path, output_dir: Path, **extra: Any) -> dict[str, Any]:
    """Config overrides that train a 4-wide network for one short epoch on a tiny dataset."""
    out = {
        "bundle_root": str(REPO_ROOT),
        "dataset_dir": str(dataset),
        "datalist_file": str(dataset / "datalist.json"),
        "output_dir": str(output_dir),
        "base_features": 4,
        "num_epochs": 1,
        "slices_per_volume": 8,
        "slices_per_draw": 4,
        "volumes_per_batch": 2,
        "progress": False,
        "precision": "fp32",
    }
    out.update(extra)
    return out


def load_script(name: str) -> Any:
    """The command-line module `scripts/<name>.py`, imported (its `main` can then be called in-process)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"scripts_{name}", REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cli_args(overrides: dict[str, Any]) -> list[str]:
    """`--key value` pairs for `python -m monai.bundle run` (values as Python literals)."""
    args = []
    for key, value in overrides.items():
        args += [f"--{key}", repr(value) if not isinstance(value, str) else value]
    return args


def run_bundle(
    run_id: str,
    config_files: list[str],
    overrides: dict[str, Any],
    cwd: Path = REPO_ROOT,
    timeout: int = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run `python -m monai.bundle run <run_id> --config_file ...` in a subprocess."""
    files = config_files[0] if len(config_files) == 1 else repr(config_files)
    cmd = [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", files, *cli_args(overrides)]
    full_env = dict(os.environ, PYTHONPATH=str(cwd), **(env or {}))
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)


def run_bundle_in_process(config_files: list[str], overrides: dict[str, Any]) -> Any:
    """The bundle's configs run in-process, as `python -m monai.bundle run` runs them (one interpreter for the whole
    suite instead of one per run): an object with the exit code, the printed output and the one-line error, like
    `run_bundle`'s."""
    import contextlib
    import io
    from types import SimpleNamespace

    from monai.bundle import ConfigWorkflow

    from bundle.errors import user_error_message

    files = config_files[0] if len(config_files) == 1 else list(config_files)
    printed, code, error = io.StringIO(), 0, ""
    with contextlib.redirect_stdout(printed):
        try:
            workflow = ConfigWorkflow(config_file=files, workflow_type=None, logging_file=False, **overrides)
            workflow.initialize()
            workflow.run()
        except SystemExit as exc:
            code = int(exc.code or 0)
        except Exception as exc:  # noqa: BLE001 - as the command line reports it: one line, exit 1
            code, error = 1, f"error: {user_error_message(exc) or exc}"
    return SimpleNamespace(returncode=code, stdout=printed.getvalue(), stderr=error)


def last_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_script(name: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run `scripts/<name>.py` with `args` in a subprocess."""
    cmd = [sys.executable, str(REPO_ROOT / "scripts" / f"{name}.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def tiny_inference_settings(checkpoint: Path, **extra: Any) -> dict[str, Any]:
    """Overrides of configs/inference.json for the tiny test network (4 wide, trained at 4 mm)."""
    out = {
        "bundle_root": str(REPO_ROOT),
        "ckpt_path": str(checkpoint),
        "network_def#base_features": 4,
        "progress": False,
        "training_spacing": [4.0, 4.0, 4.0],
    }
    out.update(extra)
    return out


def in_process_inference(checkpoint: Path, **defaults: Any):
    """A function running the inference config in-process on the tiny test network (`defaults` and then each call's
    overrides on top of `tiny_inference_settings`); it returns the exit code (the summary is printed)."""
    from monai.bundle import ConfigWorkflow

    def run(input_dir: Path, output_dir: Path, **overrides: Any) -> int:
        settings = tiny_inference_settings(checkpoint, input_dir=str(input_dir), output_dir=str(output_dir))
        settings.update({**defaults, **overrides})
        config = str(REPO_ROOT / "configs" / "inference.json")
        wf = ConfigWorkflow(config_file=config, workflow_type=None, logging_file=False, **settings)
        wf.initialize()
        try:
            wf.run()
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    return run


def user_error_line(fn) -> str:
    """The one-line message of the bundle error that `fn()` raises (asserting there is one, on one line)."""
    import pytest

    from bundle.errors import user_error_message

    with pytest.raises(BaseException) as info:
        fn()
    message = user_error_message(info.value)
    assert message is not None and "\n" not in message, repr(info.value)
    return message
