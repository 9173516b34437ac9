"""Non-local means (scikit-image `denoise_nl_means`), slice by slice as in the paper's comparison."""

from __future__ import annotations

from typing import Any

import numpy as np
from skimage.restoration import denoise_nl_means

from .base import VoxelSize, filter_axial_slices

__all__ = ["NonLocalMeans"]


class NonLocalMeans:
    """2D NLM on every axial slice of the volume divided by its 99.5th percentile.

    The filtering strength `h` is in those normalised units and, with the patch sizes, is tuned on training
    subjects. (Setting h from scikit-image's wavelet noise estimate fails here: the estimator reads the finest
    wavelet scale, and reconstructed PET noise is spatially correlated, so it underestimates the noise several-fold.)
    """

    name = "nlm"
    tuning_slices = 16  # slow: tuned on 16 evenly spaced brain slices per subject
    default_grid = [
        {"h": h, "patch_size": p, "patch_distance": d}
        for (p, d) in ((5, 6), (7, 9))
        for h in (0.005, 0.008, 0.012, 0.02, 0.03, 0.05, 0.08, 0.12, 0.18, 0.27)  # one grid for every DRF (2-200)
    ]

    def __call__(
        self,
        volume: np.ndarray,
        voxel_size_mm: VoxelSize,
        h: float = 0.12,
        patch_size: int = 5,
        patch_distance: int = 6,
        slices: np.ndarray | None = None,
        **_: Any,
    ) -> np.ndarray:
        return filter_axial_slices(
            volume,
            slices,
            lambda image: denoise_nl_means(
                image, h=h, patch_size=patch_size, patch_distance=patch_distance, fast_mode=True, preserve_range=True
            ),
        )
