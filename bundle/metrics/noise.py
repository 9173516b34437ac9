"""A scale-free estimate of an image's noise level, for telling whether a study's dose reduction lies in the range a
model was trained on.

The estimate is the robust spread (1.4826 x median absolute deviation) of the high-pass residual, image minus its
Gaussian smoothing (sigma 1 voxel), inside the eroded support of the image, divided by the support's 75th
percentile. It includes fine anatomical structure as well as noise, so it is not zero for a full-dose image; on the
bundle's simulated brains it reads about 0.04 at full dose, 0.05 at DRF 20 and 0.10 at DRF 200, which is enough to
tell the dose reductions apart. It depends on the voxel size, so it is computed on the grid the network sees.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from .image_quality import estimate_support_mask

__all__ = ["estimate_noise_level"]


def estimate_noise_level(image: Any) -> float:
    """The relative noise level of a volume (see the module's description)."""
    volume = np.squeeze(np.asarray(image, dtype=np.float32))
    support = ndimage.binary_erosion(estimate_support_mask(volume), iterations=3)
    if support.sum() < 100:
        support = estimate_support_mask(volume)
    residual = (volume - ndimage.gaussian_filter(volume, 1.0))[support]
    spread = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    level = float(np.percentile(volume[support], 75))
    return spread / level if level > 0 else float("nan")
