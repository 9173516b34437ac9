"""Error types for bad input, and the one-line reporting used by every command-line entry point."""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Any, Callable, TypeVar

__all__ = ["BundleInputError", "ConfigValueError", "InputDataError", "OutputExistsError", "cli_errors", "DEBUG_ENV"]

DEBUG_ENV = "ULDPET_DEBUG"
"""Set this environment variable to 1 to get full tracebacks instead of one-line errors."""

F = TypeVar("F", bound=Callable[..., Any])


class BundleInputError(ValueError):
    """Bad input that the user can fix: the message names the file or setting and what is wrong with it."""


class InputDataError(BundleInputError):
    """An image, datalist or checkpoint that cannot be used."""


class ConfigValueError(BundleInputError):
    """A setting with a value of the wrong type or outside its range."""


class OutputExistsError(BundleInputError):
    """An output that already exists and would be overwritten without an explicit overwrite switch."""


def one_line(exc: BaseException) -> str:
    """Render an exception as a single line: `<Type>: <message>` with newlines folded."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_user_error(exc: BaseException) -> bool:
    """Errors caused by input, configuration or the environment, reported without a traceback."""
    if isinstance(exc, (BundleInputError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return True
    if isinstance(exc, OSError) and exc.errno is not None:
        return True  # e.g. ENOSPC (disk full), EROFS
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and _is_user_error(cause)


def cli_errors(func: F) -> F:
    """Decorate a CLI `main`: bad input exits with status 2 and one line on stderr, unless ULDPET_DEBUG=1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            raise SystemExit(130) from None
        except Exception as exc:  # noqa: BLE001 - the point is to report any failure on one line
            if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                raise
            root = exc
            while isinstance(root, BundleInputError) is False and root.__cause__ is not None:
                root = root.__cause__
            shown = root if _is_user_error(exc) else exc
            logging.getLogger(__name__).debug("failure", exc_info=exc)
            print(f"error: {one_line(shown)}", file=sys.stderr)
            raise SystemExit(2 if _is_user_error(exc) else 1) from None

    return wrapper  # type: ignore[return-value]
