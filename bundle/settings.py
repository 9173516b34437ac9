"""Validation of the training settings of the bundle configs: a wrong type or range fails before any work,
with a one-line error naming the setting (called from the configs' `initialize`)."""

from __future__ import annotations

import ast
import difflib
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigValueError
from .inferers import resolve_precision
from .losses import LOSSES

__all__ = ["check_training_settings", "refuse_unknown_overrides", "unknown_overrides"]

MONAI_RUN_ARGUMENTS = {
    "run_id",
    "init_id",
    "final_id",
    "meta_file",
    "config_file",
    "logging_file",
    "tracking",
    "args_file",
}
"""The arguments of `python -m monai.bundle run` that are not config overrides."""


def _int(name: str, value: Any, low: int, high: int | None = None, odd: bool = False) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
    if ok and odd and value % 2 == 0:
        ok = False
    if not ok:
        span = f"{low}-{high}" if high is not None else f">= {low}"
        raise ConfigValueError(f"setting {name}: expected {'an odd' if odd else 'an'} integer {span}, got {value!r}")


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigValueError(f"setting {name}: expected a positive number, got {value!r}")


def _bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigValueError(f"setting {name}: expected true or false, got {value!r}")


def check_training_settings(**settings: Any) -> bool:
    """Check the settings that the configs expose; returns True (usable in a config expression list)."""
    checks = {
        "num_slices": lambda v: _int("num_slices", v, 1, 15, odd=True),
        "num_poolings": lambda v: _int("num_poolings", v, 1, 6),
        "convs_per_stage": lambda v: _int("convs_per_stage", v, 1, 4),
        "base_features": lambda v: _int("base_features", v, 1, 512),
        "guide_channels": lambda v: _int("guide_channels", v, 0, 2),
        "num_epochs": lambda v: _int("num_epochs", v, 1),
        "fold": lambda v: _int("fold", v, 0),
        "num_val_subjects": lambda v: _int("num_val_subjects", v, 0),
        "slices_per_volume": lambda v: _int("slices_per_volume", v, 1),
        "slices_per_draw": lambda v: _int("slices_per_draw", v, 1),
        "volumes_per_batch": lambda v: _int("volumes_per_batch", v, 1),
        "val_interval": lambda v: _int("val_interval", v, 1),
        "seed": lambda v: _int("seed", v, 0),
        "learning_rate": lambda v: _positive("learning_rate", v),
        "final_learning_rate": lambda v: _positive("final_learning_rate", v),
        "residual": lambda v: _bool("residual", v),
        "concat_skips": lambda v: _bool("concat_skips", v),
        "channels_last": lambda v: _bool("channels_last", v),
    }
    for name, value in settings.items():
        if name in checks:
            checks[name](value)
        elif name == "loss_name" and str(value).lower() not in (*LOSSES, "mse", "msssim", "ms_ssim"):
            raise ConfigValueError(f"setting loss_name: expected one of {list(LOSSES)}, got {value!r}")
        elif name == "precision":
            resolve_precision(value, "cpu")
        elif name == "extra_keys" and (
            not isinstance(value, list) or any(k not in ("t1", "flair", "dose") for k in value)
        ):
            raise ConfigValueError(
                "setting extra_keys: expected a list of 't1', 'flair' (MR channels) and 'dose' (the dose code), got "
                f"{value!r}"
            )
        elif (
            name == "patch_size"
            and value is not None
            and (not isinstance(value, list) or len(value) != 2 or any(not isinstance(v, int) or v < 8 for v in value))
        ):
            raise ConfigValueError(f"setting patch_size: expected null or two integers >= 8, got {value!r}")
    return True


def _config_files(value: str) -> list[str]:
    """`--config_file` as MONAI reads it: one path, a comma-separated list or a Python/JSON list literal."""
    text = value.strip()
    if text.startswith("["):
        try:
            return [str(v) for v in ast.literal_eval(text)]
        except (ValueError, SyntaxError):
            return []
    return [v for v in text.split(",") if v]


def unknown_overrides(argv: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The `--key` options of a `monai.bundle run` command line whose top-level key (before any '#') no config file
    of the command defines, each with its closest known keys."""
    names, files = [], []
    tokens = list(argv)
    for i, token in enumerate(tokens):
        if not token.startswith("--") or len(token) == 2:
            continue
        name = token[2:].split("=", 1)[0]
        if name == "config_file":
            value = token.split("=", 1)[1] if "=" in token else (tokens[i + 1] if i + 1 < len(tokens) else "")
            files += _config_files(value)
        elif name not in MONAI_RUN_ARGUMENTS:
            names.append(name)
    known: set[str] = set()
    for f in files:
        try:
            content = json.loads(Path(f).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []  # MONAI reports an unreadable config file itself
        known |= {str(k).lstrip("+").split("#", 1)[0] for k in content} if isinstance(content, dict) else set()
    out = []
    for name in names:
        top = name.split("#", 1)[0]
        if top not in known and not top.startswith("_meta_"):
            out.append((name, difflib.get_close_matches(top, sorted(known), n=2)))
    return out


def refuse_unknown_overrides(argv: Sequence[str] | None = None) -> bool:
    """Refuse (one line) a `python -m monai.bundle run` override that names no setting of its configs, such as a
    misspelled `--learning_rat 0.5`, which MONAI would add as a new key and the run would ignore. Only command
    lines of `python -m monai.bundle` are checked; returns True (usable in a config expression list)."""
    argv = list(sys.argv if argv is None else argv)
    if not argv or not argv[0].replace("\\", "/").endswith("monai/bundle/__main__.py"):
        return True
    unknown = unknown_overrides(argv[1:])
    if unknown:
        name, close = unknown[0]
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ConfigValueError(f"setting {name}: no such setting in the config files{hint}")
    return True
