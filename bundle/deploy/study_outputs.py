"""A study's outputs appear together or not at all.

Every output of a study (`<name>_denoised.nii.gz`, and for DICOM input `<name>_denoised_dicom/`) is first written into a
staging folder `.tmp-<name>-<pid>-<random>/` inside the output folder. When all of them are complete, a record
`<name>_denoised.json` is written with status "moving" and the list of outputs, the outputs are renamed into place, and
the record is rewritten with status "complete" and each output's sha256. So:

- a study that fails (or is interrupted) leaves nothing under the final names: the staging folder is removed;
- a study killed while its outputs were being moved leaves a "moving" record: the next run knows those files are its
  own, incomplete outputs and redoes the study;
- "skip" means complete: a study is skipped only when its record says "complete" and every output it lists is there
  with the recorded sha256 (for folders, the sha256 of every file in them), and the record's `made_by` (input
  sha256, model sha256, backend, precision, dose setting: `study_identity`) matches the run (checked by the caller);
- an output under a final name without a record (another program's file, or a bundle before records), or one changed
  since it was written, is never overwritten without the overwrite switch; a complete record whose outputs were
  deleted makes the study run again.

Staging folders of processes that no longer run are removed at start (`clean_stale_staging`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any, Iterator

from ..errors import OutputExistsError
from ..io import clean_stale_temporaries, file_sha256, process_alive, read_json, write_json

__all__ = ["StudyOutputs", "clean_stale_staging", "output_state", "tree_sha256"]

STAGING_PREFIX = ".tmp-"
_STAGING = re.compile(r"^\.tmp-.+-(\d+)-[0-9a-f]{8}$")


def tree_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents, in sorted order)."""
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(child.relative_to(path).as_posix().encode() + b"\0" + file_sha256(child).encode())
    return digest.hexdigest()


def clean_stale_staging(output_dir: Path) -> list[Path]:
    """Remove the staging folders (and the `atomic_path` temporaries) that processes no longer running left in
    `output_dir`; returns what was removed."""
    removed = []
    if not output_dir.is_dir():
        return removed
    for entry in output_dir.iterdir():
        match = _STAGING.match(entry.name)
        if match and entry.is_dir() and not process_alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed + clean_stale_temporaries(output_dir)


def output_state(record_path: Path) -> str:
    """'complete' (every listed output present with its sha256), 'moving' (interrupted while its outputs were moved
    into place), 'stale' (a complete record whose outputs are missing or changed) or 'none' (no record)."""
    if not record_path.is_file():
        return "none"
    record = read_json(record_path, "study output record")
    if record.get("status") != "complete":
        return "moving"
    folder = record_path.parent
    for name, digest in record.get("sha256", {}).items():
        path = folder / name
        if not path.exists() or tree_sha256(path) != digest:
            return "stale"
    return "complete"


class StudyOutputs:
    """The outputs of one study, staged and moved into `output_dir` together (see the module docstring).

    Args:
        output_dir: the output folder.
        name: the study's output name; the record is `<name>_denoised.json`.
        outputs: the final names of the study's outputs (files or folders) inside `output_dir`.
        overwrite: replace complete outputs and outputs without a record.
    """

    def __init__(
        self, output_dir: Path, name: str, outputs: list[str], overwrite: bool = False, made_by: dict | None = None
    ) -> None:
        self.output_dir = Path(output_dir)
        self.name = name
        self.outputs = list(outputs)
        self.overwrite = overwrite
        self.made_by = made_by  # what made the outputs (`study_identity`), written into the record
        self.record_path = self.output_dir / f"{name}_denoised.json"

    def state(self) -> str:
        return output_state(self.record_path)

    def recorded_identity(self) -> dict[str, Any] | None:
        """What made the outputs on record (None for a record without it, or no record)."""
        if not self.record_path.is_file():
            return None
        return read_json(self.record_path, "study output record").get("made_by")

    def check_writable(self) -> None:
        """Refuse to replace a file under a final name unless it is this tool's own: an output of an interrupted run,
        or an output still as this tool wrote it. A file without a record, or one changed since, needs overwrite."""
        state = self.state()
        if self.overwrite or state == "moving":
            return
        recorded = read_json(self.record_path, "study output record").get("sha256", {}) if state == "stale" else {}
        for name in self.outputs:
            path = self.output_dir / name
            if not path.exists() or (name in recorded and tree_sha256(path) == recorded[name]):
                continue
            why = "was changed since this tool wrote it" if name in recorded else "is not an output of this tool"
            raise OutputExistsError(f"{path}: already exists and {why}; remove it or set overwrite to replace it")

    @contextlib.contextmanager
    def staged(self) -> Iterator[Path]:
        """A staging folder to write every output into; on success the outputs are moved into place together."""
        self.check_writable()
        staging = self.output_dir / f"{STAGING_PREFIX}{self.name}-{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir(parents=True)
        try:
            yield staging
            missing = [n for n in self.outputs if not (staging / n).exists()]
            if missing:
                raise RuntimeError(f"study {self.name}: outputs {missing} were not written")
            self._publish(staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _publish(self, staging: Path) -> None:
        record: dict[str, Any] = {"study": self.name, "status": "moving", "outputs": self.outputs}
        if self.made_by is not None:
            record["made_by"] = self.made_by
        write_json(record, self.record_path, overwrite=True)
        digests = {}
        for name in self.outputs:
            source, target = staging / name, self.output_dir / name
            digests[name] = tree_sha256(source)
            if target.is_dir() and not target.is_symlink():
                trash = self.output_dir / f"{STAGING_PREFIX}{self.name}-{os.getpid()}-{secrets.token_hex(4)}"
                os.replace(target, trash)  # a folder cannot be replaced by rename: move the old one aside first
                os.replace(source, target)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(source, target)
        write_json(dict(record, status="complete", sha256=digests), self.record_path, overwrite=True)
