"""The paper's image-quality metrics, computed inside a (brain) mask.

Definitions (x = image under test, y = full-dose reference, M = mask voxels):

- NRMSE = sqrt( sum_M (x - y)^2 / sum_M y^2 )
- PSNR  = 20 log10( MAX / sqrt( mean_M (x - y)^2 ) ), MAX = max_M y (the reference's peak in the mask)
- SSIM  = mean over M of the SSIM map; the map is computed per axial slice with MONAI's
  `compute_ssim_and_cs` (11 x 11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, L = MAX), which is
  the Wang et al. (2004) definition used by scikit-image with `gaussian_weights=True`,
  `use_sample_covariance=False`. The map is defined where the whole window fits in the slice (5 voxels
  from the in-plane border), so mask voxels closer than that to the border are not counted.

Volumes are (x, y, z) arrays with z axial. Per-slice metrics use the slice's own reference peak as MAX.
Metrics are unchanged when x and y are scaled by the same factor.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from monai.metrics.regression import compute_ssim_and_cs
from scipy import ndimage

from ..errors import InputDataError

__all__ = [
    "SSIM_WINDOW",
    "SSIM_SIGMA",
    "masked_mae",
    "masked_nrmse",
    "masked_psnr",
    "masked_ssim",
    "ssim_map_2d",
    "image_metrics",
    "slice_metrics",
    "estimate_support_mask",
    "check_mask",
]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
_HALF = SSIM_WINDOW // 2


def _np(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _prepare(pred: Any, ref: Any, mask: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, m = _np(pred).astype(np.float64), _np(ref).astype(np.float64), _np(mask).astype(bool)
    x, y, m = np.squeeze(x), np.squeeze(y), np.squeeze(m)
    if x.shape != y.shape or m.shape != y.shape:
        raise InputDataError(f"metrics: shapes differ (image {x.shape}, reference {y.shape}, mask {m.shape})")
    if not m.any():
        raise InputDataError("metrics: the mask is empty")
    return x, y, m


def masked_nrmse(pred: Any, ref: Any, mask: Any) -> float:
    """sqrt(sum_M (x - y)^2 / sum_M y^2)."""
    x, y, m = _prepare(pred, ref, mask)
    return float(math.sqrt(np.sum((x[m] - y[m]) ** 2) / max(np.sum(y[m] ** 2), 1e-30)))


def masked_mae(pred: Any, ref: Any, mask: Any) -> float:
    """Mean absolute error inside the mask, computed in float32 (the validation loss curve's unit)."""
    x, y, m = (np.squeeze(_np(a)) for a in (pred, ref, mask))
    m = m.astype(bool)
    return float(np.abs(x[m].astype(np.float32) - y[m].astype(np.float32)).mean())


def masked_psnr(pred: Any, ref: Any, mask: Any, peak: float | None = None) -> float:
    """20 log10(MAX / RMSE) inside the mask, MAX the reference's peak in the mask (or `peak`)."""
    x, y, m = _prepare(pred, ref, mask)
    peak = float(y[m].max()) if peak is None else float(peak)
    mse = float(np.mean((x[m] - y[m]) ** 2))
    return float("inf") if mse == 0 else float(10.0 * math.log10(peak**2 / mse))


def ssim_map_2d(pred: np.ndarray, ref: np.ndarray, data_range: float) -> np.ndarray:
    """SSIM map of every axial slice of (x, y, z) volumes, shape (x - 10, y - 10, z) (valid window only)."""
    scale = float(data_range) if data_range > 0 else 1.0
    xt = torch.from_numpy(np.moveaxis(pred / scale, -1, 0)[:, None].astype(np.float32))
    yt = torch.from_numpy(np.moveaxis(ref / scale, -1, 0)[:, None].astype(np.float32))
    ssim, _ = compute_ssim_and_cs(
        xt,
        yt,
        spatial_dims=2,
        kernel_size=(SSIM_WINDOW, SSIM_WINDOW),
        kernel_sigma=(SSIM_SIGMA, SSIM_SIGMA),
        data_range=1.0,
    )
    return np.moveaxis(ssim[:, 0].numpy(), 0, -1)


def _interior(mask: np.ndarray) -> np.ndarray:
    """The mask restricted to where the SSIM window fits, cropped like the SSIM map."""
    return mask[_HALF:-_HALF, _HALF:-_HALF, ...]


def masked_ssim(pred: Any, ref: Any, mask: Any, peak: float | None = None) -> float:
    """Mean of the per-slice SSIM map over the mask (L = the reference's peak in the mask, or `peak`)."""
    x, y, m = _prepare(pred, ref, mask)
    if x.ndim == 2:
        x, y, m = x[..., None], y[..., None], m[..., None]
    peak = float(y[m].max()) if peak is None else float(peak)
    inner = _interior(m)
    if not inner.any():
        raise InputDataError("metrics: the mask lies entirely within 5 voxels of the image border")
    return float(ssim_map_2d(x, y, peak)[inner].mean())


def image_metrics(pred: Any, ref: Any, mask: Any) -> dict[str, float]:
    """NRMSE, PSNR and SSIM of a volume inside the mask."""
    return {
        "nrmse": masked_nrmse(pred, ref, mask),
        "psnr": masked_psnr(pred, ref, mask),
        "ssim": masked_ssim(pred, ref, mask),
    }


def slice_metrics(pred: Any, ref: Any, mask: Any, min_voxels: int = 50) -> list[dict[str, float]]:
    """Per axial slice (with at least `min_voxels` mask voxels): slice index and NRMSE, PSNR, SSIM."""
    x, y, m = _prepare(pred, ref, mask)
    out = []
    for z in range(y.shape[-1]):
        mz = m[..., z]
        if mz.sum() < min_voxels or not _interior(mz[..., None]).any():
            continue
        xz, yz = x[..., z], y[..., z]
        peak = float(yz[mz].max())
        smap = ssim_map_2d(xz[..., None], yz[..., None], peak)[..., 0]
        mse = float(np.mean((xz[mz] - yz[mz]) ** 2))
        out.append(
            {
                "slice": z,
                "nrmse": float(math.sqrt(np.sum((xz[mz] - yz[mz]) ** 2) / max(np.sum(yz[mz] ** 2), 1e-30))),
                "psnr": float("inf") if mse == 0 else float(10 * math.log10(peak**2 / mse)),
                "ssim": float(smap[_interior(mz[..., None])[..., 0]].mean()),
            }
        )
    return out


def estimate_support_mask(image: Any, fraction: float = 0.2, smoothing_voxels: float = 2.0) -> np.ndarray:
    """Brain mask from image support, as in the paper: smoothed image above `fraction` of its 99.5th
    percentile, holes filled, largest connected component kept."""
    img = _np(image).astype(np.float32)
    img = np.squeeze(img)
    smooth = ndimage.gaussian_filter(img, smoothing_voxels)
    level = fraction * float(np.percentile(smooth, 99.5))
    mask = smooth > level
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, labels, index=range(1, n + 1))
        mask = labels == (int(np.argmax(sizes)) + 1)
    return ndimage.binary_fill_holes(mask)


def check_mask(mask: Any, name: str = "mask") -> np.ndarray:
    """Refuse an empty mask, or one covering the whole image (a mask that selects nothing meaningful)."""
    m = np.squeeze(_np(mask)).astype(bool)
    if not m.any():
        raise InputDataError(f"{name}: the mask is empty")
    if m.all():
        raise InputDataError(f"{name}: the mask covers the whole image")
    return m
