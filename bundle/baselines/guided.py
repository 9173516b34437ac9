"""3D guided filter (He, Sun and Tang, TPAMI 2013): a local linear model of the image in each box in terms of a guide,
smoothing flat regions and keeping edges whose variance exceeds `eps`; guided by the image itself (`guided`) or by the
study's T1 (`guided-t1`, the MR-guided classical baseline: edges where the MR has them)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import ConfigValueError
from ..transforms.intensity import percentile_scale
from .base import VoxelSize

__all__ = ["GuidedFilter", "MRGuidedFilter", "guided_filter"]


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


def _normalised_guided(
    volume: np.ndarray, guide: np.ndarray, voxel_size_mm: VoxelSize, radius_mm: float, eps: float
) -> np.ndarray:
    """`guided_filter` of `volume` with `guide`, both divided by their 99.5th percentile, over a box of about
    `radius_mm` on each side of a voxel, in `volume`'s units; `radius_mm` 0 returns the volume."""
    if radius_mm <= 0:
        return volume.astype(np.float32, copy=True)
    scale = percentile_scale(volume)
    normalised = volume.astype(np.float64) / scale
    reference = guide.astype(np.float64) / percentile_scale(guide.astype(np.float32))
    size = tuple(2 * max(int(round(radius_mm / v)), 1) + 1 for v in voxel_size_mm)
    return (guided_filter(normalised, reference, size, eps) * scale).astype(np.float32)


class GuidedFilter:
    """The self-guided 3D filter with a box of about `radius_mm` on each side of a voxel and a regulariser `eps`
    relative to the square of the volume's 99.5th percentile."""

    name = "guided"
    tuning_slices = None  # a fast 3D filter: tuned on whole volumes
    default_grid = [
        {"radius_mm": r, "eps": e} for r, e in itertools.product([2.0, 4.0, 6.0, 8.0], [1e-4, 1e-3, 3e-3, 1e-2, 3e-2])
    ]

    guide_key: str | None = None  # the datalist key of another guide (MRGuidedFilter), passed as `guide`

    def __call__(
        self,
        volume: np.ndarray,
        voxel_size_mm: VoxelSize,
        radius_mm: float = 4.0,
        eps: float = 1e-2,
        guide: np.ndarray | None = None,
        slices: np.ndarray | None = None,
        **_: Any,
    ) -> np.ndarray:
        if self.guide_key is None:
            return _normalised_guided(volume, volume, voxel_size_mm, radius_mm, eps)
        if guide is None or np.shape(guide) != np.shape(volume):
            raise ConfigValueError(
                f"baseline {self.name}: needs each subject's {self.guide_key} on the PET's grid (datalist key "
                f"{self.guide_key}), got {None if guide is None else np.shape(guide)} for a PET of {np.shape(volume)}"
            )
        return _normalised_guided(volume, np.asarray(guide), voxel_size_mm, radius_mm, eps)


class MRGuidedFilter(GuidedFilter):
    """The 3D guided filter of the volume with its T1 as the guide (both divided by their 99.5th percentile), a box
    of about `radius_mm` on each side of a voxel and a regulariser `eps`; needs each subject's `t1` on the PET's grid
    (`guide_key`), which tuning and evaluation pass as `guide`."""

    name = "guided-t1"
    guide_key = "t1"
    # no filtering first (a T1 guide can only harm a nearly noise-free PET), and larger regularisers than the
    # self-guided filter's: PET is not linear in T1 over a box (CSF and white matter are both dark on one of them)
    default_grid = [{"radius_mm": 0.0, "eps": 0.0}] + [
        {"radius_mm": r, "eps": e} for r, e in itertools.product([2.0, 4.0, 6.0, 8.0], [1e-3, 1e-2, 3e-2, 0.1, 0.3])
    ]
