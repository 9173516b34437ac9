"""The model-zoo archive: `<name>_v<version>.zip` with configs, models, docs, LICENSE and the bundle's code.

The archive holds `<name>/checksums.sha256` (sha256 of every file in it) and is accompanied by
`<zip>.sha256` (sha256 of the archive). `verify_archive` checks both before anything is used, and
`extract_archive` extracts only verified archives, refusing paths that leave the target folder.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Iterable

from .errors import InputDataError, OutputExistsError
from .io import atomic_path, file_sha256, read_json, write_text

__all__ = ["archive_name", "build_archive", "verify_archive", "extract_archive", "WEIGHTS"]

WEIGHTS = "models/model.pt"
MAX_INFLATED_BYTES = 2 << 30
"""An archive that would inflate beyond this is refused before any member is read (a bundle is tens of MB)."""
_INCLUDE = ("configs", "models", "docs", "bundle", "scripts")
_TOP_FILES = ("LICENSE", "README.md", "pyproject.toml")
_SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints"}


def archive_name(root: str | Path = ".") -> str:
    meta = read_json(Path(root) / "configs" / "metadata.json", "metadata")
    return f"{meta['name']}_v{meta['version']}.zip"


def _files(root: Path) -> Iterable[Path]:
    for top in _TOP_FILES:
        if (root / top).is_file():
            yield root / top
    for folder in _INCLUDE:
        for path in sorted((root / folder).rglob("*")):
            if (
                path.is_file()
                and not (_SKIP_PARTS & set(path.parts))
                and not path.name.startswith(".")
                and path.suffix != ".pyc"
            ):
                yield path


def build_archive(root: str | Path = ".", out_dir: str | Path = "dist", overwrite: bool = False) -> Path:
    """Write the archive and its `.sha256` sidecar atomically; refuses to package without weights."""
    root = Path(root).resolve()
    if not (root / WEIGHTS).is_file():
        raise InputDataError(f"{root / WEIGHTS}: no trained weights to package (train or copy a checkpoint first)")
    meta = read_json(root / "configs" / "metadata.json", "metadata")
    name = meta["name"]
    out = Path(out_dir) / archive_name(root)
    sums = []
    with atomic_path(out, overwrite=overwrite) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in _files(root):
                rel = path.relative_to(root).as_posix()
                zf.write(path, f"{name}/{rel}")
                sums.append(f"{file_sha256(path)}  {rel}")
            zf.writestr(f"{name}/checksums.sha256", "\n".join(sums) + "\n")
    write_text(f"{file_sha256(out)}  {out.name}\n", str(out) + ".sha256", overwrite=overwrite)
    return out


def verify_archive(path: str | Path) -> str:
    """Check the archive against its sidecar checksum and every member against the internal manifest.

    Returns the bundle name (the archive's top folder).
    """
    archive = Path(path)
    if not archive.is_file():
        raise InputDataError(f"archive {archive}: file not found")
    sidecar = Path(str(archive) + ".sha256")
    if not sidecar.is_file():
        raise InputDataError(f"archive {archive}: no checksum file {sidecar.name} beside it")
    try:
        fields = sidecar.read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputDataError(f"checksum file {sidecar}: cannot be read ({type(exc).__name__})") from exc
    if not fields or not _is_sha256(fields[0]):
        raise InputDataError(f"checksum file {sidecar}: empty or not a sha256 line ('<64 hex digits>  <file name>')")
    if file_sha256(archive) != fields[0].lower():
        raise InputDataError(f"archive {archive}: sha256 does not match {sidecar.name} (corrupt or modified)")
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise InputDataError(f"archive {archive}: not a zip file") from exc
    with zf:
        names = zf.namelist()
        inflated = sum(info.file_size for info in zf.infolist())
        if inflated > MAX_INFLATED_BYTES:
            raise InputDataError(
                f"archive {archive}: would inflate to {inflated / 2**20:.0f} MiB, more than the "
                f"{MAX_INFLATED_BYTES / 2**20:.0f} MiB a bundle can hold (a zip bomb?)"
            )
        tops = {PurePosixPath(n).parts[0] for n in names}
        if len(tops) != 1:
            raise InputDataError(f"archive {archive}: expected one top-level bundle folder, found {sorted(tops)}")
        name = tops.pop()
        manifest_name = f"{name}/checksums.sha256"
        if manifest_name not in names:
            raise InputDataError(f"archive {archive}: no checksums.sha256 manifest")
        manifest = {}
        for number, line in enumerate(_read_member(zf, manifest_name, archive).decode("utf-8", "replace").splitlines()):
            parts = line.split(None, 1)
            if len(parts) != 2 or not _is_sha256(parts[0]):
                raise InputDataError(
                    f"archive {archive}: checksums.sha256 line {number + 1} is not '<sha256>  <path>': {line[:60]!r}"
                )
            manifest[parts[1].strip()] = parts[0].lower()
        if WEIGHTS not in manifest:
            raise InputDataError(f"archive {archive}: missing its weights ({WEIGHTS})")
        members = {n[len(name) + 1 :] for n in names if not n.endswith("/")} - {"checksums.sha256"}
        if members != set(manifest):
            raise InputDataError(
                f"archive {archive}: files differ from its manifest ({sorted(members ^ set(manifest))[:3]})"
            )
        for rel, digest in manifest.items():
            if _member_sha256(zf, f"{name}/{rel}", archive) != digest:
                raise InputDataError(f"archive {archive}: {rel} does not match its checksum")
    return name


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)


def _member_sha256(zf: zipfile.ZipFile, member: str, archive: Path) -> str:
    """sha256 of a member, read in chunks; refuses a member that inflates beyond its declared size."""
    info = zf.getinfo(member)
    digest, total = hashlib.sha256(), 0
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(1 << 20):
                total += len(chunk)
                if total > info.file_size:
                    raise InputDataError(f"archive {archive}: {member} inflates beyond its declared size (a zip bomb?)")
                digest.update(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise InputDataError(f"archive {archive}: {member} is corrupt ({exc})") from exc
    return digest.hexdigest()


def _read_member(zf: zipfile.ZipFile, member: str, archive: Path, limit: int = 16 << 20) -> bytes:
    info = zf.getinfo(member)
    if info.file_size > limit:
        raise InputDataError(f"archive {archive}: {member} is {info.file_size} bytes, too large for a checksum list")
    return zf.read(info)


def extract_archive(path: str | Path, dest: str | Path, overwrite: bool = False) -> Path:
    """Verify, then extract into `dest`; returns the bundle folder `dest/<name>`."""
    name = verify_archive(path)
    dest = Path(dest).resolve()
    target = dest / name
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target}: already exists; set overwrite to replace it")
    with zipfile.ZipFile(path) as zf:
        for member in zf.namelist():
            out = (dest / member).resolve()
            if os.path.commonpath([str(dest), str(out)]) != str(dest):
                raise InputDataError(f"archive {path}: member {member} would be written outside {dest}")
        zf.extractall(dest)
    return target
