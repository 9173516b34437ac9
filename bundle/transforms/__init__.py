"""Transforms: input checks, invertible intensity scaling, 2.5D stacking, slice sampling, augmentation,
lesion and noise-balance loss weights."""

from .dose import DoseCoded, DoseLevelScalesd, RandDoseCodeSpreadd, RandDoseLeveld, dose_code
from .hot_uptake import RestoreHotUptaked
from .intensity import PercentileScaled, percentile_scale
from .loading import LoadPETd
from .loss_weight import AppendLossWeightd, AppendNoiseBalanceWeightd, LesionLossWeightd, lesion_loss_weight
from .mr_inputs import MRAlignmentCheckd, RequireMRd
from .native_grid import AddToNatived, NetworkCorrectiond
from .stacking import AxialSliceStackd, RandAxialSlicesd, RandTransposed, stack_adjacent_slices
from .validation import CheckPETVolumesd, EnsureMaskd

__all__ = [
    "AddToNatived",
    "NetworkCorrectiond",
    "AppendLossWeightd",
    "AppendNoiseBalanceWeightd",
    "AxialSliceStackd",
    "CheckPETVolumesd",
    "DoseCoded",
    "DoseLevelScalesd",
    "EnsureMaskd",
    "LesionLossWeightd",
    "LoadPETd",
    "MRAlignmentCheckd",
    "PercentileScaled",
    "RandAxialSlicesd",
    "RandDoseCodeSpreadd",
    "RandDoseLeveld",
    "RandTransposed",
    "RequireMRd",
    "RestoreHotUptaked",
    "dose_code",
    "lesion_loss_weight",
    "percentile_scale",
    "stack_adjacent_slices",
]
