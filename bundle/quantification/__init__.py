"""Dose, lesion and regional tables with paired statistics, from evaluation records: what a PET reader checks before
a global PSNR (does lesion uptake survive, does the method help at every dose level, where in the brain does it gain).

A record is one method's evaluation of one subject at one dose level:

    {"subject": "sub-001", "drf": 20.0, "method": "network", "nrmse": ..., "psnr": ..., "ssim": ...,
     "paper_convention": {"nrmse", "psnr", "ssim"}, "regions": {"interior": {"nrmse", "psnr", "voxels"}, ...},
     "lesions": {"1": {"kind", "suv_mean_bias_pct", "suv_max_bias_pct", "suv_peak_bias_pct", "contrast_recovery",
                       "reference_contrast", "suv_mean_bias_pct_vs_truth", ...}, ...},
     "white_matter_cv": ...}

(`evaluation_record` builds one from `metrics.evaluate_volume`). A lesion is hot or cold by its kind where the phantom
names it (`records.KIND_POLARITY`), else by the sign of its contrast in the full-dose reference. Every comparison of two methods is paired over the subjects both were evaluated on: the
mean difference, its 95 % bootstrap interval and the sign test (`metrics.paired_comparison`).
"""

from .markdown import markdown_sections
from .records import (
    Records,
    evaluation_record,
    lesions_of,
    mean_abs_lesion_bias,
    polarity,
    region_psnr,
    summary_metrics,
)
from .tables import dose_rows, drf_label, lesion_kind_rows, lesion_rows, paired_rows, regional_rows

__all__ = [
    "Records",
    "dose_rows",
    "drf_label",
    "evaluation_record",
    "lesion_kind_rows",
    "lesion_rows",
    "lesions_of",
    "markdown_sections",
    "mean_abs_lesion_bias",
    "paired_rows",
    "polarity",
    "region_psnr",
    "regional_rows",
    "summary_metrics",
]
