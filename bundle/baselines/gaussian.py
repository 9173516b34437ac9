"""Gaussian post-filter: what scanners apply by default; the floor every method must clear."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy import ndimage

from ..resolution import fwhm_to_sigma
from .base import VoxelSize

__all__ = ["GaussianFilter"]


class GaussianFilter:
    """Separable Gaussian filter with an in-plane and an axial FWHM in mm (edges repeated)."""

    name = "gaussian"
    tuning_slices = None  # fast 3D filter: tuned on whole volumes
    # in-plane x axial FWHM grid (mm); 0 = no filtering in that direction
    default_grid = [
        {"fwhm_mm": f, "axial_fwhm_mm": a}
        for f, a in itertools.product([0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0], [0.0, 2.0, 4.0, 6.0, 8.0])
    ]

    def __call__(
        self, volume: np.ndarray, voxel_size_mm: VoxelSize, fwhm_mm: float = 4.0, axial_fwhm_mm: float = 4.0, **_: Any
    ) -> np.ndarray:
        vx, vy, vz = voxel_size_mm
        sigma = [fwhm_to_sigma(fwhm_mm) / vx, fwhm_to_sigma(fwhm_mm) / vy, fwhm_to_sigma(axial_fwhm_mm) / vz]
        if max(sigma) <= 0:
            return volume.astype(np.float32, copy=True)
        return ndimage.gaussian_filter(volume.astype(np.float32), sigma=sigma, mode="nearest")
