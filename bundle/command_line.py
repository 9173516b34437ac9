"""What the command-line entry points in scripts/ share: an argument parser whose errors are one line, logging
set-up, config overrides given as key=value, and the training profiles."""

from __future__ import annotations

import argparse
import ast
import json
import logging
import sys
from typing import NoReturn, Sequence

from .errors import ConfigValueError

__all__ = ["PROFILES", "OneLineArgumentParser", "named_paths", "parse_override", "setup_logging"]

PROFILES = {
    "cpu-default": [],
    "paper": ["configs/profiles/paper.json"],
    "paper-gpu": ["configs/profiles/paper.json", "configs/profiles/device_batches.json"],
}
"""Training profiles: the override files merged onto configs/train.json."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument prints one line naming it (no usage block) and exits with status 2."""

    def parse_and_log(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        """Parse `argv` and set up logging (DEBUG with a `--verbose` flag set, else INFO)."""
        args = self.parse_args(argv)
        setup_logging(bool(getattr(args, "verbose", False)))
        return args

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


def named_paths(specs: Sequence[str], setting: str, what: str = "PATH", skip_missing: bool = True) -> dict[str, str]:
    """{NAME: PATH} from NAME=PATH arguments; with `skip_missing`, names whose path does not exist are left out, and
    a one-line error names the setting when none is left (or an argument is malformed)."""
    from pathlib import Path

    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigValueError(f"setting {setting}: expected NAME={what}, got {spec!r}")
        if not skip_missing or Path(path).exists():
            out[name] = path
    if not out:
        raise ConfigValueError(f"setting {setting}: none of {list(specs)} exists")
    return out


def parse_override(text: str) -> tuple[str, object]:
    """`key=value` with value read as JSON, else as a Python literal, else as a plain string."""
    if "=" not in text:
        raise ConfigValueError(f"setting override: expected key=value, got {text!r}")
    key, raw = text.split("=", 1)
    for parse in (json.loads, ast.literal_eval):
        try:
            return key.strip(), parse(raw)
        except (ValueError, SyntaxError):
            continue
    return key.strip(), raw
