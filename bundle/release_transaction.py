"""Publish a set of files together: all the new ones, or all the old ones, never a mix.

A release replaces the weights, their provenance, their TorchScript and ONNX exports and the bundle metadata. Each is
first written completely under a temporary name beside its final one (`stage`). `commit` then writes a journal
listing every (staged, final) pair, atomically: that write is the commit point. The staged files are renamed into
place and the journal is removed. A process killed at any moment leaves either

- no journal: the old files untouched (the staged temporaries are removed by `clean_stale_temporaries`), or
- a journal: every new file complete under its staged or its final name; `recover` (run before any release and
  before the shipped weights are used) finishes the renames, so the new release is complete.

`KILL_AFTER_WRITES`, when set (by the tests only), kills this process with SIGKILL after that many file writes or
renames, to prove the above at every step.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Iterator

from .errors import InputDataError
from .io import clean_stale_temporaries, temporary_path, write_json

__all__ = ["JOURNAL_NAME", "ReleaseTransaction", "recover"]

JOURNAL_NAME = ".release-journal.json"
KILL_AFTER_WRITES: int | None = None  # test hook: SIGKILL this process after that many writes
_writes = 0


def _written() -> None:
    """Count a write or rename; the tests' fault injection kills the process here."""
    global _writes
    _writes += 1
    if KILL_AFTER_WRITES is not None and _writes >= KILL_AFTER_WRITES:
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def recover(journal_dir: str | os.PathLike) -> bool:
    """Finish a release that was killed after its commit point (idempotent); returns whether one was finished."""
    journal = Path(journal_dir) / JOURNAL_NAME
    if not journal.is_file():
        return False
    try:
        renames = json.loads(journal.read_text(encoding="utf-8"))["renames"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputDataError(f"{journal}: an interrupted release's journal cannot be read ({exc}); remove it") from exc
    for staged, final in renames:
        if Path(staged).exists():
            os.replace(staged, final)
            _written()
    journal.unlink()
    _fsync_dir(journal.parent)
    return True


class ReleaseTransaction:
    """Stage files, then publish them all at once (see the module docstring). Use as a context manager: on an
    exception before `commit`, every staged file is removed and nothing is published."""

    def __init__(self, journal_dir: str | os.PathLike, other_dirs: tuple[str | os.PathLike, ...] = ()) -> None:
        self.journal_dir = Path(journal_dir)
        self.other_dirs = [Path(d) for d in other_dirs]  # folders of staged files outside journal_dir
        self.staged: dict[Path, Path] = {}  # final -> staged
        self.committed = False

    def __enter__(self) -> "ReleaseTransaction":
        recover(self.journal_dir)
        for folder in (self.journal_dir, *self.other_dirs):
            clean_stale_temporaries(folder)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.committed:
            self.abort()

    def stage(self, final: str | os.PathLike) -> Path:
        """A temporary path beside `final` to write its new content into (it must be complete before `commit`)."""
        target = Path(final).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = temporary_path(target)
        self.staged[target] = staged
        return staged

    @contextlib.contextmanager
    def staged_file(self, final: str | os.PathLike) -> Iterator[Path]:
        """`stage`, as a context that fsyncs the file once written and counts the write."""
        staged = self.stage(final)
        yield staged
        if not staged.is_file():
            raise RuntimeError(f"{final}: the writer produced no file")
        with open(staged, "rb+") as fh:
            os.fsync(fh.fileno())
        _written()

    def commit(self) -> None:
        """Write the journal (the commit point), rename every staged file into place, remove the journal."""
        missing = [str(f) for f, s in self.staged.items() if not s.is_file()]
        if missing:
            raise RuntimeError(f"release: {missing} were not written")
        renames = [[str(s), str(f)] for f, s in self.staged.items()]
        write_json({"renames": renames}, self.journal_dir / JOURNAL_NAME, overwrite=True)  # fsynced, then renamed
        _fsync_dir(self.journal_dir)
        _written()
        self.committed = True
        recover(self.journal_dir)

    def abort(self) -> None:
        for staged in self.staged.values():
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()
        self.staged.clear()
