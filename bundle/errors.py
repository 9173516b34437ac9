"""Error types for bad input, and the one-line reporting used by every command-line entry point."""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Any, Callable, TypeVar

__all__ = [
    "BundleInputError",
    "ConfigValueError",
    "InputDataError",
    "OutputExistsError",
    "cli_errors",
    "root_cause",
    "one_line",
    "DEBUG_ENV",
    "install_error_reporting",
    "user_error_message",
]

QUIET_LOGGERS = (
    "StatsHandler",
    "monai.handlers.StatsHandler",  # MONAI >= 1.5 logs engine exceptions here
    "ignite.engine.engine.SupervisedTrainer",
    "ignite.engine.engine.SupervisedEvaluator",
    "",
)
"""Loggers whose records about user errors lose their traceback (the message is kept)."""

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


def root_cause(exc: BaseException) -> BaseException:
    """The most informative exception in a chain: the first BundleInputError, else the innermost cause.

    MONAI wraps transform failures in RuntimeError('applying transform ...'); the cause says what was wrong.
    """
    chain = [exc]
    while chain[-1].__cause__ is not None and chain[-1].__cause__ not in chain:
        chain.append(chain[-1].__cause__)
    for item in chain:
        if isinstance(item, BundleInputError):
            return item
    # an error raised while handling an OS error (torch's "unexpected pos" after a full disk) hides the real cause
    # in __context__: report the OS error (ENOSPC, EACCES, ...) instead
    seen, item = set(), chain[-1]
    while item is not None and id(item) not in seen:
        seen.add(id(item))
        if isinstance(item, OSError) and item.errno is not None:
            return item
        item = item.__cause__ or item.__context__
    return chain[-1]


def _is_user_error(exc: BaseException) -> bool:
    """Errors caused by input, configuration or the environment (or Ctrl-C), reported without a traceback."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    if isinstance(exc, (BundleInputError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return True
    if isinstance(exc, OSError) and exc.errno is not None:
        return True  # e.g. ENOSPC (disk full), EROFS
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and _is_user_error(cause)


def user_error_message(exc: BaseException) -> str | None:
    """The one-line message for an error caused by input, settings or the environment; None for bugs."""
    if not _is_user_error(exc):
        return None
    return f"error: {one_line(root_cause(exc))}"


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


class _QuietUserErrors(logging.Filter):
    """Drop the traceback from log records about user errors (the message itself is kept)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and not _debug() and _is_user_error(record.exc_info[1]):
            record.exc_info, record.exc_text = None, None
        return True


def install_error_reporting() -> None:
    """Make uncaught user errors end with one line (`python -m monai.bundle run ...` included).

    Installs a sys.excepthook that prints `error: <Type>: <message>` for errors caused by bad input
    (bugs keep their full traceback), and a filter that keeps MONAI's handlers from logging the same
    tracebacks. Set ULDPET_DEBUG=1 to see every traceback.
    """
    if getattr(sys.excepthook, "_uldpet", False):
        return
    previous = sys.excepthook

    def hook(exc_type, exc, tb):  # type: ignore[no-untyped-def]
        message = None if _debug() else user_error_message(exc)
        if message is None:
            previous(exc_type, exc, tb)
        elif isinstance(root_cause(exc), KeyboardInterrupt) or isinstance(exc, KeyboardInterrupt):
            print("error: interrupted", file=sys.stderr)
            os._exit(130)  # noqa: SLF001 - the interpreter would print the interruption again on its way out
        else:
            print(message, file=sys.stderr)

    hook._uldpet = True  # type: ignore[attr-defined]
    sys.excepthook = hook
    quiet = _QuietUserErrors()
    for name in QUIET_LOGGERS:
        _logger_as_monai_makes_it(name).addFilter(quiet)


MONAI_LOG_FORMAT = "%(asctime)s - %(levelname)s - %(message)s"  # monai.apps.utils.DEFAULT_FMT


class _CurrentStdoutHandler(logging.StreamHandler):
    """A stream handler writing to whatever `sys.stdout` is when a record is emitted (not when it was made)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # type: ignore[override]
        pass


def _logger_as_monai_makes_it(name: str) -> logging.Logger:
    """The logger `name`; a `monai.*` logger not made yet is made as `monai.apps.get_logger` makes it (INFO to stdout,
    not propagated), because that function adds its handler only to a logger that does not exist yet."""
    exists = name in logging.root.manager.loggerDict
    logger = logging.getLogger(name)
    if name.startswith("monai.handlers.") and not exists:
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handler = _CurrentStdoutHandler()
        handler.setFormatter(logging.Formatter(MONAI_LOG_FORMAT))
        logger.addHandler(handler)
    return logger


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
            if _debug():
                raise
            shown = root_cause(exc)
            logging.getLogger(__name__).debug("failure", exc_info=exc)
            print(f"error: {one_line(shown)}", file=sys.stderr)
            raise SystemExit(2 if _is_user_error(exc) else 1) from None

    return wrapper  # type: ignore[return-value]
