"""Shared command-line plumbing: an argument parser whose errors are one line, and logging set-up."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn

__all__ = ["OneLineArgumentParser", "setup_logging"]


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument prints one line naming it (no usage block) and exits with status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def setup_logging(verbose: bool = False) -> None:
    """INFO (or DEBUG) messages on stderr, without tracebacks unless ULDPET_DEBUG=1."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
