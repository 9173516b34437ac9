"""Validation of the training settings of the bundle configs: a wrong type or range fails before any work,
with a one-line error naming the setting (called from the configs' `initialize`)."""

from __future__ import annotations

from typing import Any

from .errors import ConfigValueError
from .inferers import resolve_precision
from .losses import LOSSES

__all__ = ["check_training_settings"]


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
        elif name == "extra_keys" and (not isinstance(value, list) or any(k not in ("t1",) for k in value)):
            raise ConfigValueError(
                f"setting extra_keys: expected a list of datalist keys such as ['t1'], got {value!r}"
            )
        elif (
            name == "patch_size"
            and value is not None
            and (not isinstance(value, list) or len(value) != 2 or any(not isinstance(v, int) or v < 8 for v in value))
        ):
            raise ConfigValueError(f"setting patch_size: expected null or two integers >= 8, got {value!r}")
    return True
