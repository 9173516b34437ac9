"""BM3D (the `bm3d` package, free for non-commercial use only), slice by slice.

This module imports `bm3d` at import time; the rest of the bundle works without it (see `available_methods`).
"""

from __future__ import annotations

from typing import Any

import bm3d
import numpy as np

from ..transforms.intensity import percentile_scale

__all__ = ["BM3DFilter", "LICENCE_NOTE"]

LICENCE_NOTE = "bm3d (Tampere University) is free for non-commercial use only; it is an optional extra of this bundle."


class BM3DFilter:
    """2D BM3D on every axial slice of the volume divided by its 99.5th percentile; the noise level `sigma`
    (in those normalised units) is tuned on training subjects."""

    name = "bm3d"
    # on the default data a grid from 0.03 to 0.4 chose its largest value on every fold, so the grid starts higher
    default_grid = [{"sigma": s} for s in (0.12, 0.18, 0.27, 0.4, 0.6, 0.9, 1.35)]

    def __call__(self, volume: np.ndarray, voxel_size_mm: tuple[float, float, float], sigma: float = 0.12,
                 slices: np.ndarray | None = None, **_: Any) -> np.ndarray:
        scale = percentile_scale(volume)
        normalised = volume.astype(np.float32) / scale
        out = normalised.copy()
        for z in (range(volume.shape[-1]) if slices is None else slices):
            out[..., z] = bm3d.bm3d(normalised[..., z], sigma_psd=sigma)
        return out * scale
