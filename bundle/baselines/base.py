"""What a classical baseline is: a callable filter with a name, a tuning grid and a tuning budget."""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from ..transforms.intensity import percentile_scale

__all__ = ["Baseline", "VoxelSize", "filter_axial_slices"]

VoxelSize = tuple[float, float, float]
"""A voxel size in mm, (x, y, z) with z axial."""


@runtime_checkable
class Baseline(Protocol):
    """A denoiser tuned per fold on the training subjects and applied to the test subject.

    Attributes:
        name: registry name (`gaussian`, `nlm`, ...).
        default_grid: parameter settings searched by the per-fold tuning (keyword arguments of `__call__`).
        tuning_slices: evenly spaced brain slices per subject the tuning scores (None: the whole volume);
            slow slice-by-slice filters use a few slices, fast 3D filters the whole volume.
        other_dose_tuning_slices (optional): the budget at the dose levels other than the datalist's `image`
            (default: `tuning_slices`).
    """

    name: str
    default_grid: list[dict[str, Any]]
    tuning_slices: int | None

    def __call__(
        self,
        volume: np.ndarray,
        voxel_size_mm: tuple[float, float, float],
        slices: np.ndarray | None = None,
        **params: Any,
    ) -> np.ndarray:
        """The filtered volume (only `slices` need be filtered when given)."""
        ...


def filter_axial_slices(
    volume: np.ndarray, slices: Sequence[int] | None, denoise_slice: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """A 2D denoiser applied to axial slices (all, or `slices`) of the volume divided by its 99.5th percentile, so
    that the denoiser's strength is in units that do not depend on the scan's activity; returned in the input's units.
    """
    scale = percentile_scale(volume)
    normalised = volume.astype(np.float32) / scale
    out = normalised.copy()
    for z in range(volume.shape[-1]) if slices is None else slices:
        out[..., z] = denoise_slice(normalised[..., z])
    return out * scale
