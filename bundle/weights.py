"""Weight files: safe loading (`weights_only=True`, one-line errors naming the file), architecture checks,
and atomic, byte-reproducible saving. No Ignite here: deployment and export load weights through this module."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch

from .errors import InputDataError
from .io import atomic_path

__all__ = ["load_checkpoint", "load_network_weights", "network_state", "save_weights"]


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (weights_only=True) with one-line errors naming the file."""
    p = Path(path)
    if not p.is_file():
        raise InputDataError(f"checkpoint {p}: file not found")
    try:
        obj = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise InputDataError(
            f"checkpoint {p}: refused, it holds objects other than tensors and plain containers (unsafe to unpickle)"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InputDataError(f"checkpoint {p}: truncated or corrupt ({type(exc).__name__})") from exc
    if not isinstance(obj, Mapping):
        raise InputDataError(f"checkpoint {p}: expected a dictionary of tensors, got {type(obj).__name__}")
    return dict(obj)


def network_state(obj: dict[str, Any], key: str | None = "network") -> dict[str, Any]:
    """The network's state dict inside a checkpoint: `obj[key]` when nested, else `obj` itself (a plain state dict)."""
    if key and key in obj and isinstance(obj[key], Mapping):
        return dict(obj[key])
    for candidate in ("network", "model", "state_dict"):
        if candidate in obj and isinstance(obj[candidate], Mapping):
            return dict(obj[candidate])
    return obj


def load_network_weights(
    network: torch.nn.Module, path: str | os.PathLike, key: str | None = "network"
) -> torch.nn.Module:
    """Load weights into `network`, refusing (one line) a checkpoint of another architecture."""
    state = network_state(load_checkpoint(path), key)
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        detail = f"{len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} mismatched tensors" + (
            f", e.g. {(mismatched or missing or unexpected)[0]}" if (mismatched or missing or unexpected) else ""
        )
        raise InputDataError(f"checkpoint {path}: written for a different network architecture ({detail})")
    network.load_state_dict(state)
    return network


def save_weights(obj: Mapping[str, Any], path: str | os.PathLike, overwrite: bool = True) -> Path:
    """torch.save atomically (temporary name, fsync, rename).

    The archive is written through a file handle, so its internal record names do not carry the random
    temporary file name: the same weights give byte-identical files (and the same sha256) on every run.
    """
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as fh:
        torch.save(dict(obj), fh)
    return Path(path)
