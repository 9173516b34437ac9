"""3D guided filter (He, Sun and Tang, TPAMI 2013), guided by the image itself: a local linear model of the image in
each box, smoothing flat regions and keeping edges whose variance exceeds `eps`."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy import ndimage

from ..transforms.intensity import percentile_scale
from .base import VoxelSize

__all__ = ["GuidedFilter", "guided_filter"]


def guided_filter(image: np.ndarray, guide: np.ndarray, size: tuple[int, ...], eps: float) -> np.ndarray:
    """The guided filter of `image` with `guide` over boxes of `size` voxels: out = mean(a) * guide + mean(b), where
    in each box a = cov(guide, image) / (var(guide) + eps) and b = mean(image) - a mean(guide)."""
    p, g = np.asarray(image, np.float64), np.asarray(guide, np.float64)

    def box(x: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(x, size=size, mode="nearest")

    mean_g, mean_p = box(g), box(p)
    cov_gp = box(g * p) - mean_g * mean_p
    var_g = np.maximum(box(g * g) - mean_g * mean_g, 0.0)
    a = cov_gp / (var_g + eps)
    b = mean_p - a * mean_g
    return box(a) * g + box(b)


class GuidedFilter:
    """The self-guided 3D filter with a box of about `radius_mm` on each side of a voxel and a regulariser `eps`
    relative to the square of the volume's 99.5th percentile."""

    name = "guided"
    tuning_slices = None  # a fast 3D filter: tuned on whole volumes
    default_grid = [
        {"radius_mm": r, "eps": e} for r, e in itertools.product([2.0, 4.0, 6.0, 8.0], [1e-4, 1e-3, 3e-3, 1e-2, 3e-2])
    ]

    def __call__(
        self,
        volume: np.ndarray,
        voxel_size_mm: VoxelSize,
        radius_mm: float = 4.0,
        eps: float = 1e-2,
        slices: np.ndarray | None = None,
        **_: Any,
    ) -> np.ndarray:
        if radius_mm <= 0:
            return volume.astype(np.float32, copy=True)
        scale = percentile_scale(volume)
        normalised = volume.astype(np.float64) / scale
        size = tuple(2 * max(int(round(radius_mm / v)), 1) + 1 for v in voxel_size_mm)
        return (guided_filter(normalised, normalised, size, eps) * scale).astype(np.float32)
