"""Estimate a study's dose-reduction factor from its image, for a dose-conditioned model given no DRF.

Counts fall as 1 / DRF, so the noise variance of an OSEM image grows about linearly with the DRF, over a floor of
fine anatomical structure that the noise estimate also picks up (`noise.estimate_noise_level`). The estimator fits
level^2 = floor + slope x DRF by least squares over a training cohort at every dose level and inverts it. A
post-filter or another voxel size changes the slope, so the estimate is an *effective* DRF: the dose at which the
cohort's average scanner would give that noise.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import InputDataError
from .noise import estimate_noise_level

__all__ = ["DRF_RANGE", "estimate_drf", "fit_drf_estimator"]

DRF_RANGE = (1.0, 400.0)


def fit_drf_estimator(levels: Sequence[float], drfs: Sequence[float]) -> dict[str, Any]:
    """Fit level^2 = floor + slope x DRF to noise levels measured at known DRFs; returns the coefficients and the
    fit's error in log2(DRF) on the fitted data."""
    x, y = np.asarray(drfs, dtype=float), np.asarray(levels, dtype=float) ** 2
    if len(x) < 2 or len(set(x.tolist())) < 2:
        raise InputDataError("DRF estimator: needs noise levels at two or more dose levels")
    slope, floor = np.polyfit(x, y, 1)
    if slope <= 0:
        raise InputDataError("DRF estimator: the noise level does not grow with the DRF in these data")
    coefficients = {"floor": float(floor), "slope": float(slope)}
    estimates = np.array([estimate_drf_from_level(v, coefficients) for v in levels])
    error = np.log2(estimates / x)
    return {
        **coefficients,
        "model": "noise_level^2 = floor + slope x DRF",
        "estimator": "bundle.metrics.noise.estimate_noise_level",
        "fit_rms_log2_error": float(np.sqrt(np.mean(error**2))),
        "n": int(len(x)),
    }


def estimate_drf_from_level(level: float, coefficients: dict[str, Any]) -> float:
    """The DRF whose fitted noise level is `level`, clipped to `DRF_RANGE`."""
    drf = (float(level) ** 2 - coefficients["floor"]) / coefficients["slope"]
    return float(np.clip(drf, *DRF_RANGE))


def estimate_drf(image: Any, coefficients: dict[str, Any]) -> float:
    """The effective DRF of a study (an (X, Y, Z) volume on the network's grid)."""
    return estimate_drf_from_level(estimate_noise_level(image), coefficients)
