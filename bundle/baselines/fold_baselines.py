"""Baselines tuned on one fold's training subjects, ready for the evaluation report."""

from __future__ import annotations

import logging
from typing import Any, Sequence

from ..errors import ConfigValueError
from . import available_methods
from .tuning import TunedBaseline, load_cases, score_grid, select_parameters

__all__ = ["tuned_baselines", "SLOW_METHOD_SLICES"]

logger = logging.getLogger(__name__)
SLOW_METHOD_SLICES = 16  # NLM and BM3D are tuned on this many evenly spaced brain slices per subject


def tuned_baselines(names: Sequence[str], training_items: Sequence[dict[str, Any]],
                    slices_per_case: int = SLOW_METHOD_SLICES) -> dict[str, TunedBaseline]:
    """Tune each named baseline on `training_items` (never the test subject) and return them by name.

    The slow methods (NLM, BM3D) are tuned on `slices_per_case` evenly spaced brain slices per subject.
    """
    methods = available_methods()
    unknown = [n for n in names if n not in methods]
    if unknown:
        hint = " (bm3d is an optional extra: pip install '.[bm3d]')" if "bm3d" in unknown else ""
        raise ConfigValueError(f"setting baselines: unknown or unavailable {unknown}; available {sorted(methods)}{hint}")
    if not names:
        return {}
    cases = load_cases(training_items)
    out = {}
    for name in names:
        method = methods[name]()
        limit = None if name == "gaussian" else slices_per_case
        scores = score_grid(method, method.default_grid, cases, slices_per_case=limit)
        params = select_parameters(scores, method.default_grid, range(len(cases)))
        logger.info("baseline %s tuned on %d training subjects: %s", name, len(cases), params)
        out[name] = TunedBaseline(name, method, params)
    return out
