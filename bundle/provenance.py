"""Provenance: library versions, platform, seed and settings, for every output folder and MLflow run."""

from __future__ import annotations

import ast
import hashlib
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

from . import __version__
from .io import write_json

__all__ = ["versions", "provenance", "recorded_setting", "write_manifest", "settings_digest"]


def versions(*extra: str) -> dict[str, str]:
    """Versions of the packages that determine the numbers, plus those of the `extra` packages named."""
    import importlib.metadata

    import ignite
    import mlflow
    import monai
    import numpy
    import scipy
    import torch

    return {
        "bundle": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "pytorch-ignite": ignite.__version__,
        "mlflow": mlflow.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        **{name: importlib.metadata.version(name) for name in extra},
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def settings_digest(settings: Any) -> str:
    """A short sha256 of JSON-serialised settings."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def provenance(seed: int | None = None, settings: Any = None) -> dict[str, Any]:
    import torch

    return {
        "versions": versions(),
        "platform": platform.platform(),
        "device": "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "seed": seed,
        "git_commit": _git_commit(),
        "settings": settings,
        "settings_digest": None if settings is None else settings_digest(settings),
    }


def write_manifest(folder: str | Path, seed: int | None = None, settings: Any = None, **extra: Any) -> Path:
    """Write `<folder>/manifest.json` (atomically) describing how the folder's outputs were made."""
    record = provenance(seed, settings)
    record.update(extra)
    return write_json(record, Path(folder) / "manifest.json", overwrite=True)


def recorded_setting(settings: Any, name: str, default: Any = None) -> Any:
    """A setting as a run recorded it (a checkpoint manifest stores values as strings, a fold's config as values),
    read back as a Python value where the string is a literal ('16' -> 16, "['dose']" -> ['dose'])."""
    value = settings.get(name, default)
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value
