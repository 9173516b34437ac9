"""Metrics: the paper's image quality (NRMSE, PSNR, SSIM inside a mask), regional metrics, lesion quantification
(SUVmean/max/peak bias, contrast recovery, white-matter noise), paired statistics, and all of them on one volume."""

from .image_quality import (
    SSIM_SIGMA,
    SSIM_WINDOW,
    check_mask,
    estimate_support_mask,
    image_metrics,
    masked_mae,
    masked_nrmse,
    masked_psnr,
    masked_ssim,
    slice_metrics,
    ssim_map_2d,
)
from .lesion import lesion_bias, suv_peak, white_matter_cv, white_matter_noise
from .regions import brain_regions, paper_convention_metrics, regional_metrics
from .statistics import PairedComparison, paired_comparison
from .volume_evaluation import evaluate_volume

__all__ = [
    "PairedComparison",
    "brain_regions",
    "evaluate_volume",
    "lesion_bias",
    "paired_comparison",
    "paper_convention_metrics",
    "regional_metrics",
    "suv_peak",
    "white_matter_cv",
    "white_matter_noise",
    "SSIM_SIGMA",
    "SSIM_WINDOW",
    "check_mask",
    "estimate_support_mask",
    "image_metrics",
    "masked_mae",
    "masked_nrmse",
    "masked_psnr",
    "masked_ssim",
    "slice_metrics",
    "ssim_map_2d",
]
