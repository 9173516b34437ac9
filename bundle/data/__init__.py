"""Datalists: loading and validation, leave-one-out folds, fold isolation."""

from .datalist import DATALIST_KEYS, at_dose, datalist_drf, dose_key, dose_levels, lesion_kinds, load_datalist
from .folds import assert_fold_isolation, loocv_split

__all__ = [
    "DATALIST_KEYS",
    "at_dose",
    "datalist_drf",
    "dose_key",
    "dose_levels",
    "lesion_kinds",
    "assert_fold_isolation",
    "load_datalist",
    "loocv_split",
]
