"""One writer per output folder.

Two inference runs into one folder would each publish their studies over the other's (both reporting success). A
run therefore holds `OUT/.uldpet-inference.lock` (created exclusively, holding its pid and host) from before its
first study until it exits; a second run fails fast with one line naming the folder and the holder. A lock whose
process no longer runs on this host (a killed run) is stale and taken over, said once in the log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from ..errors import OutputExistsError
from ..io import process_alive

__all__ = ["LOCK_NAME", "OutputFolderLock"]

logger = logging.getLogger(__name__)
LOCK_NAME = ".uldpet-inference.lock"
FRESH_S = 30.0  # an empty lock file younger than this is a run between creating and writing it


class OutputFolderLock:
    """Context manager holding `folder/LOCK_NAME` for this process.

    Raises:
        OutputExistsError: another live process holds the lock.
    """

    def __init__(self, folder: str | os.PathLike, setting: str = "output_dir") -> None:
        self.path = Path(folder) / LOCK_NAME
        self.setting = setting
        self.held = False

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _age_s(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except OSError:
            return float("inf")

    def acquire(self) -> None:
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                pid, host = holder.get("pid"), holder.get("host")
                same_host = host in (None, socket.gethostname())
                if not holder and self._age_s() < FRESH_S:
                    pid, host = "?", "a run that is starting"  # created but not yet written: held
                if pid == "?" or (
                    isinstance(pid, int) and pid != os.getpid() and (process_alive(pid) or not same_host)
                ):
                    raise OutputExistsError(
                        f"setting {self.setting}: {self.path.parent} is being written by another run (pid {pid} on "
                        f"{host}); wait for it to finish or choose another output folder"
                    ) from None
                logger.warning("removing the stale lock %s left by a run that no longer runs (pid %s)", self.path, pid)
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"pid": os.getpid(), "host": socket.gethostname()}, fh)
            self.held = True
            return
        raise OutputExistsError(
            f"setting {self.setting}: could not take the lock {self.path}; another run races for it"
        )

    def release(self) -> None:
        if self.held and self._holder().get("pid") == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self.held = False

    def __enter__(self) -> "OutputFolderLock":
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
