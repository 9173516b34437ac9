"""Classical baselines (Gaussian post-filter, NLM, BM3D), their registry, and "tune per fold, then apply"."""

from .base import Baseline
from .registry import BASELINES, available_baselines, make_baseline

__all__ = ["BASELINES", "Baseline", "available_baselines", "make_baseline"]
