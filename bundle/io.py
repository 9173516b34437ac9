"""Crash-safe file output: everything is written under a temporary name in the target folder, then renamed.

A crash or a full disk therefore never leaves a truncated file where a complete one is expected, and an
existing output is only replaced when the caller asks for it explicitly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import nibabel as nib
import numpy as np

from .errors import InputDataError, OutputExistsError

__all__ = [
    "atomic_path",
    "clean_stale_temporaries",
    "process_alive",
    "ensure_writable_dir",
    "file_sha256",
    "full_suffix",
    "load_ras_volume",
    "read_json",
    "save_nifti",
    "temporary_path",
    "write_json",
    "write_text",
]

_KNOWN_DOUBLE_SUFFIXES = (".nii.gz", ".tar.gz")


def full_suffix(path: str | os.PathLike) -> str:
    """The extension including `.nii.gz`-style double suffixes."""
    name = Path(path).name.lower()
    for suffix in _KNOWN_DOUBLE_SUFFIXES:
        if name.endswith(suffix):
            return Path(path).name[-len(suffix) :]
    return Path(path).suffix


def temporary_path(target: str | os.PathLike) -> Path:
    """A fresh temporary name beside `target` (`.<stem>.tmp-<pid>-<random><suffix>`), which
    `clean_stale_temporaries` removes once its process no longer runs."""
    target = Path(target)
    suffix = full_suffix(target)
    stem = target.name[: len(target.name) - len(suffix)] if suffix else target.name
    return target.parent / f".{stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed onto `path`.

    Raises:
        OutputExistsError: `path` exists and `overwrite` is False.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target}: already exists; pass the overwrite switch to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(target)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{target}: the writer produced no file")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


_TEMPORARY = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]{8}")


def clean_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of `atomic_path` (`.<name>.tmp-<pid>-<random>...`) in `folder` whose process no longer
    runs (left by a killed run); returns what was removed."""
    removed: list[Path] = []
    root = Path(folder)
    if not root.is_dir():
        return removed
    for entry in root.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match and not process_alive(int(match.group(1))):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
            removed.append(entry)
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs (this one always does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_writable_dir(path: str | os.PathLike, setting: str = "output folder") -> Path:
    """Create `path` if needed and prove it is writable; raise a one-line error naming the setting otherwise."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-", delete=True):
            pass
    except OSError as exc:
        raise InputDataError(f"{setting} {folder}: cannot be written ({exc.strerror or exc})") from exc
    return folder


def save_nifti(
    array: np.ndarray, affine: np.ndarray, path: str | os.PathLike, overwrite: bool = False, units: str | None = None
) -> Path:
    """Write a NIfTI file atomically with the given affine (qform and sform both set)."""
    img = nib.Nifti1Image(np.asarray(array), np.asarray(affine, dtype=np.float64))
    img.header.set_xyzt_units(xyz="mm")
    if units:
        img.header["descrip"] = units.encode()[:79]
    with atomic_path(path, overwrite=overwrite) as tmp:
        nib.save(img, tmp)
    return Path(path)


def write_text(text: str, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a text file atomically."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(obj: Any, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write JSON atomically, indented and with sorted keys where it is a mapping."""
    return write_text(json.dumps(obj, indent=2, default=_json_default) + "\n", path, overwrite=overwrite)


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically (replacing `path`) and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return Path(path)


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read JSON with a one-line error naming the file when it is missing or malformed."""
    p = Path(path)
    if not p.is_file():
        raise InputDataError(f"{what} {p}: file not found")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputDataError(f"{what} {p}: not valid JSON ({exc})") from exc


def load_ras_volume(path: str | os.PathLike) -> np.ndarray:
    """A NIfTI volume's voxels (float32) in RAS voxel order (nibabel's closest canonical orientation)."""
    return np.asarray(nib.as_closest_canonical(nib.load(str(path))).get_fdata(dtype=np.float32))


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
