"""Smooth random fields: the deformations, regional uptake modulation and lesion shapes of simulated subjects."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage

__all__ = ["smooth_field"]


def smooth_field(
    shape: tuple[int, ...], voxel_mm: tuple[float, ...], correlation_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """Zero-mean, unit-sd smooth random field.

    Coarse white noise on a grid spaced `correlation_mm` apart is upsampled with cubic splines to a grid
    4x coarser than `shape` and then trilinearly to `shape` (the cubic step sets the smoothness, the linear
    step only the sampling, which keeps this cheap on large grids).
    """
    coarse = tuple(max(3, int(math.ceil(n * v / correlation_mm)) + 1) for n, v in zip(shape, voxel_mm))
    noise = rng.standard_normal(coarse).astype(np.float32)
    middle = tuple(max(c, int(math.ceil(n / 4))) for n, c in zip(shape, coarse))
    mid = ndimage.zoom(noise, [m / c for m, c in zip(middle, coarse)], order=3, mode="nearest", grid_mode=True)
    field_t = torch.from_numpy(np.ascontiguousarray(mid))[None, None]
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(shape)]
    fine = torch.nn.functional.interpolate(field_t, size=tuple(shape), mode=mode, align_corners=False)[0, 0].numpy()
    fine = fine - fine.mean()
    return fine / max(float(fine.std()), 1e-6)
