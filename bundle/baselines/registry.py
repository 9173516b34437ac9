"""The baselines the bundle knows, by name. Adding a baseline: one module with a `Baseline` class and one line here."""

from __future__ import annotations

import importlib

from ..errors import ConfigValueError
from .base import Baseline

__all__ = ["BASELINES", "available_baselines", "make_baseline"]

BASELINES: dict[str, str] = {
    "gaussian": "bundle.baselines.gaussian:GaussianFilter",
    "bilateral": "bundle.baselines.bilateral:BilateralFilter",
    "guided": "bundle.baselines.guided:GuidedFilter",
    "guided-t1": "bundle.baselines.guided:MRGuidedFilter",  # guided by the study's T1 (an MR-guided baseline)
    "nlm": "bundle.baselines.nlm:NonLocalMeans",
    "bm3d": "bundle.baselines.bm3d_filter:BM3DFilter",  # optional extra: free for non-commercial use only
    "bm4d": "bundle.baselines.bm4d_filter:BM4DFilter",  # optional extra (in .[bm3d]): non-commercial use only
}


def available_baselines() -> dict[str, type]:
    """Baseline classes that can run here (a baseline whose package is not installed, such as bm3d, is left out)."""
    out = {}
    for name, target in BASELINES.items():
        module, cls = target.split(":")
        try:
            out[name] = getattr(importlib.import_module(module), cls)
        except ImportError:
            continue
    return out


def make_baseline(name: str) -> Baseline:
    """An instance of the named baseline, or a one-line error naming the setting."""
    available = available_baselines()
    if name not in available:
        hint = " (bm3d and bm4d are an optional extra: pip install '.[bm3d]')" if name in ("bm3d", "bm4d") else ""
        raise ConfigValueError(
            f"setting baselines: unknown or unavailable {name!r}; available {sorted(available)}{hint}"
        )
    return available[name]()
