"""Transforms: input checks, invertible intensity scaling, 2.5D stacking, slice sampling, augmentation."""

from .dose import DoseCoded, DoseLevelScalesd, RandDoseLeveld, dose_code
from .intensity import PercentileScaled, percentile_scale
from .loading import LoadPETd
from .stacking import AxialSliceStackd, RandAxialSlicesd, RandTransposed, stack_adjacent_slices
from .validation import CheckPETVolumesd, EnsureMaskd

__all__ = [
    "AxialSliceStackd",
    "CheckPETVolumesd",
    "DoseCoded",
    "DoseLevelScalesd",
    "EnsureMaskd",
    "LoadPETd",
    "PercentileScaled",
    "RandAxialSlicesd",
    "RandDoseLeveld",
    "RandTransposed",
    "dose_code",
    "percentile_scale",
    "stack_adjacent_slices",
]
