"""Resolution units shared by the simulator, the baselines and the metrics (below all of them)."""

from __future__ import annotations

import math

__all__ = ["fwhm_to_sigma"]


def fwhm_to_sigma(fwhm: float) -> float:
    """Gaussian standard deviation from a full width at half maximum."""
    return float(fwhm) / math.sqrt(8.0 * math.log(2.0))
