"""Image-quality metrics of the paper (NRMSE, PSNR, SSIM inside a mask) and the mask helpers."""

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

__all__ = [
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
