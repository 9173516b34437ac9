"""Weight files: safe loading (`weights_only=True`, one-line errors naming the file), architecture checks,
and atomic, byte-reproducible saving. No Ignite here: deployment and export load weights through this module."""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch

from .errors import InputDataError
from .io import atomic_path, file_sha256, read_json

__all__ = [
    "PROVENANCE_FILE",
    "SHIPPED_MODELS_DIR",
    "is_shipped_path",
    "load_checkpoint",
    "load_network_weights",
    "network_state",
    "save_weights",
    "verify_shipped_file",
]

logger = logging.getLogger(__name__)


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
    except PermissionError as exc:
        raise InputDataError(f"checkpoint {p}: cannot be read (permission denied)") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InputDataError(f"checkpoint {p}: truncated or corrupt ({type(exc).__name__})") from exc
    if not isinstance(obj, Mapping):
        raise InputDataError(f"checkpoint {p}: expected a dictionary of tensors, got {type(obj).__name__}")
    return dict(obj)


PROVENANCE_FILE = "model_provenance.json"


def verify_shipped_file(path: str | os.PathLike) -> bool:
    """Check a model file against the `model_provenance.json` beside it: the shipped weights (`weights`, `sha256`)
    and their exports (`exports`: file name -> sha256) must have the recorded sha256. Returns True when the file was
    verified, False for a file the provenance does not record (a user's own checkpoint: accepted, with a note).

    Raises:
        InputDataError: the file differs from the sha256 recorded for it (changed or corrupted), naming both files.
    """
    from .release_transaction import JOURNAL_NAME, recover

    p = Path(path)
    if (p.parent / JOURNAL_NAME).is_file():
        recover(p.parent)  # a release killed after its commit point: finish it before reading any of its files
        logger.warning("%s: finished an interrupted release before loading", p.parent)
    provenance = p.parent / PROVENANCE_FILE
    shipped = is_shipped_path(p)
    if not provenance.is_file():
        if shipped:
            raise InputDataError(
                f"{p}: the shipped model's provenance {provenance} is missing, so its weights cannot be checked; restore "
                "it (git checkout models/), or load your own checkpoint from another folder"
            )
        logger.warning("%s: no %s beside it; loading it as your own checkpoint (not verified)", p, PROVENANCE_FILE)
        return False
    record = read_json(provenance, "model provenance")
    if not isinstance(record, dict):
        raise InputDataError(f"model provenance {provenance}: expected a JSON object, got {type(record).__name__}")
    recorded = dict(record.get("exports", {}))
    if Path(str(record.get("weights", ""))).name and record.get("sha256"):
        recorded[Path(str(record["weights"])).name] = record["sha256"]
    expected = recorded.get(p.name)
    if expected is None:
        if shipped:
            raise InputDataError(f"{p}: the shipped model file is not recorded in {provenance}; re-run the release")
        logger.warning("%s: not recorded in %s; loading it as your own checkpoint (not verified)", p, provenance)
        return False
    if isinstance(expected, dict):  # an export: its sha256 and the sha256 of the weights it was made from
        source = expected.get("weights_sha256")
        if source is not None and source != record.get("sha256"):
            raise InputDataError(
                f"{p}: exported from other weights (sha256 {str(source)[:12]}...) than the shipped "
                f"{Path(str(record.get('weights', 'model.pt'))).name} ({str(record.get('sha256'))[:12]}...): a stale "
                "export; run scripts/export.py --overwrite"
            )
        expected = expected.get("sha256")
    actual = file_sha256(p)
    if actual != expected:
        raise InputDataError(
            f"{p}: sha256 {actual[:12]}... differs from {expected[:12]}... recorded in {provenance}: the shipped model "
            "was changed or corrupted; restore it, or give your own checkpoint another name or folder"
        )
    return True


SHIPPED_NAMES = ("model.pt", "model.ts", "model.onnx")
SHIPPED_MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


def is_shipped_path(path: str | os.PathLike) -> bool:
    """Whether `path` is one of the bundle's own model files (`models/` or `models/variants/<name>/` of this bundle,
    named model.pt, model.ts or model.onnx), whose provenance must be there."""
    p = Path(path).resolve()
    models = SHIPPED_MODELS_DIR.resolve()
    return p.name in SHIPPED_NAMES and (p.parent == models or p.parent.parent == models / "variants")


def network_state(obj: dict[str, Any], key: str | None = "network") -> dict[str, Any]:
    """The network's state dict inside a checkpoint: `obj[key]` when nested, else `obj` itself (a plain state dict)."""
    if key and key in obj and isinstance(obj[key], Mapping):
        return dict(obj[key])
    for candidate in ("network", "model", "state_dict"):
        if candidate in obj and isinstance(obj[candidate], Mapping):
            return dict(obj[candidate])
    return obj


def load_network_weights(
    network: torch.nn.Module, path: str | os.PathLike, key: str | None = "network", verify: bool = True
) -> torch.nn.Module:
    """Load weights into `network`, refusing (one line) shipped weights that differ from their recorded sha256 and a
    checkpoint of another architecture."""
    if verify:
        verify_shipped_file(path)
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
