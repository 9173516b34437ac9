"""Datalists: loading and validation, leave-one-out folds, fold isolation."""

from .cohort_split import cohort_split
from .datalist import DATALIST_KEYS, at_dose, datalist_drf, dose_key, dose_levels, lesion_kinds, load_datalist
from .folds import assert_fold_isolation, loocv_split

__all__ = [
    "DATALIST_KEYS",
    "at_dose",
    "cohort_split",
    "datalist_drf",
    "dose_key",
    "dose_levels",
    "lesion_kinds",
    "assert_fold_isolation",
    "load_datalist",
    "loocv_split",
]
