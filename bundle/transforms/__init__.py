"""Transforms: input checks, invertible intensity scaling, 2.5D stacking, slice sampling, augmentation."""

from .intensity import PercentileScaled, percentile_scale
from .loading import LoadPETd
from .stacking import AxialSliceStackd, RandAxialSlicesd, RandTransposed, stack_adjacent_slices
from .validation import CheckPETVolumesd, EnsureMaskd

__all__ = [
    "AxialSliceStackd",
    "CheckPETVolumesd",
    "EnsureMaskd",
    "LoadPETd",
    "PercentileScaled",
    "RandAxialSlicesd",
    "RandTransposed",
    "percentile_scale",
    "stack_adjacent_slices",
]
