"""The noise level of a low-dose image, measured from physics: the root-mean-square of (low - full) inside the brain,
relative to the brain's mean uptake, each image divided by its own brain mean so that no calibration between them is
needed. This is what the noise estimator (`networks.noise_estimator`) learns to read from the low-dose image alone,
and what `deploy.noise_code` turns into a dose code: a property of the image, not a label relative to one protocol.

The brain is the low-dose image's own support (`image_quality.estimate_support_mask`), eroded by `NOISE_MASK_EROSION`
voxels so that the skull edge's partial volume does not count as noise; it is the region the estimator aggregates
over at inference too, where no full-dose image or datalist mask exists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import InputDataError
from .image_quality import estimate_support_mask

__all__ = ["NOISE_MASK_EROSION", "brain_mean", "noise_mask", "relative_noise", "relative_noise_log2"]

NOISE_MASK_EROSION = 2
MIN_MASK_VOXELS = 200


def noise_mask(low: Any) -> np.ndarray:
    """The (X, Y, Z) region the noise level is measured in: the eroded support of the low-dose volume."""
    volume = np.squeeze(np.asarray(low, dtype=np.float32))
    support = estimate_support_mask(volume)
    eroded = ndimage.binary_erosion(support, iterations=NOISE_MASK_EROSION)
    return eroded if eroded.sum() >= MIN_MASK_VOXELS else support


def brain_mean(image: Any, mask: np.ndarray) -> float:
    """Mean of `image` inside `mask`; a one-line error when the mask is empty or the mean is not positive."""
    values = np.squeeze(np.asarray(image, dtype=np.float64))[mask]
    mean = float(values.mean()) if values.size else float("nan")
    if not mean > 0:
        raise InputDataError(f"noise level: the image's mean inside its brain region is {mean!r}, not positive")
    return mean


def relative_noise(low: Any, full: Any, mask: np.ndarray | None = None) -> float:
    """RMS of (low / its brain mean - full / its brain mean) inside `mask` (default `noise_mask(low)`)."""
    low_v = np.squeeze(np.asarray(low, dtype=np.float64))
    full_v = np.squeeze(np.asarray(full, dtype=np.float64))
    if low_v.shape != full_v.shape:
        raise InputDataError(f"noise level: low-dose {low_v.shape} and full-dose {full_v.shape} grids differ")
    region = noise_mask(low_v) if mask is None else np.asarray(mask, dtype=bool)
    difference = low_v / brain_mean(low_v, region) - full_v / brain_mean(full_v, region)
    return float(np.sqrt(np.mean(difference[region] ** 2)))


def relative_noise_log2(low: Any, full: Any, mask: np.ndarray | None = None) -> float:
    """log2 of `relative_noise`: the unit the estimator's error is reported in."""
    return float(np.log2(relative_noise(low, full, mask)))
