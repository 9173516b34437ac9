"""BM3D (the `bm3d` package, free for non-commercial use only), slice by slice.

This module imports `bm3d` at import time; the rest of the bundle works without it (see `registry.available_baselines`).
"""

from __future__ import annotations

from typing import Any

import bm3d
import numpy as np

from .base import VoxelSize, filter_axial_slices

__all__ = ["BM3DFilter", "LICENCE_NOTE"]

LICENCE_NOTE = "bm3d (Tampere University) is free for non-commercial use only; it is an optional extra of this bundle."


class BM3DFilter:
    """2D BM3D on every axial slice of the volume divided by its 99.5th percentile; the noise level `sigma`
    (in those normalised units) is tuned on training subjects."""

    name = "bm3d"
    tuning_slices = 16  # slow: tuned on 16 evenly spaced brain slices per subject
    other_dose_tuning_slices = 4  # ~1 s per 128 x 128 slice on 2 CPU cores: 4 slices at the dose levels besides `image`
    # one grid for every dose level: on the default data DRF 200 chooses 0.4 (a grid from 0.03 to 0.4 chose its largest
    # value on every fold); lower dose reductions are less noisy and choose less
    default_grid = [{"sigma": s} for s in (0.012, 0.02, 0.03, 0.05, 0.08, 0.12, 0.18, 0.27, 0.4, 0.6, 0.9)]

    def __call__(
        self,
        volume: np.ndarray,
        voxel_size_mm: VoxelSize,
        sigma: float = 0.12,
        slices: np.ndarray | None = None,
        **_: Any,
    ) -> np.ndarray:
        return filter_axial_slices(volume, slices, lambda image: bm3d.bm3d(image, sigma_psd=sigma))
