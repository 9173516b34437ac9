"""Regional image metrics: where in the brain a method gains or loses.

Regions of the brain mask M:
- `interior`: voxels more than 6 mm inside the brain's edge (distance to the nearest voxel outside M, with the voxel
  size);
- `edge`: the rest of M, the 6 mm band at the brain's boundary, where smoothing errors concentrate;
- `grey_matter`, `white_matter`: from a tissue label map (1 grey matter, 2 white matter, as the simulator writes it),
  inside M; absent without one.

Regional PSNR uses the reference's peak in the whole brain mask as MAX, so the regions of one image differ only in
their error, and regional NRMSE is sqrt(sum_R (x - y)^2 / sum_R y^2) over the region R.

The paper-convention metrics follow Xu et al.'s Table I: the images are multiplied by the brain mask and every
metric is computed over whole axial slices (zeros outside the brain included), then averaged over the slices that
hold brain. They read higher than the masked metrics and are reported beside them, labelled, only so that our
numbers can be held next to the paper's.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity

from .image_quality import masked_nrmse

__all__ = [
    "EDGE_BAND_MM",
    "GREY_MATTER",
    "WHITE_MATTER",
    "brain_regions",
    "paper_convention_metrics",
    "regional_metrics",
]

EDGE_BAND_MM = 6.0
GREY_MATTER, WHITE_MATTER = 1, 2


def brain_regions(
    mask: np.ndarray, voxel_size_mm: tuple[float, float, float], tissue: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The regions above as boolean arrays (empty regions are left out)."""
    brain = np.asarray(mask, bool)
    depth = ndimage.distance_transform_edt(brain, sampling=voxel_size_mm)
    regions = {"interior": depth > EDGE_BAND_MM, "edge": brain & (depth <= EDGE_BAND_MM)}
    if tissue is not None:
        labels = np.rint(np.asarray(tissue)).astype(np.int64)
        regions["grey_matter"] = brain & (labels == GREY_MATTER)
        regions["white_matter"] = brain & (labels == WHITE_MATTER)
    return {name: region for name, region in regions.items() if region.any()}


def regional_metrics(
    pred: np.ndarray, ref: np.ndarray, mask: np.ndarray, regions: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """{region: {"nrmse", "psnr", "voxels"}} for every region of the brain mask (`regions` from `brain_regions`)."""
    x, y = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    peak = float(y[np.asarray(mask, bool)].max())
    out = {}
    for name, region in regions.items():
        mse = float(np.mean((x[region] - y[region]) ** 2))
        out[name] = {
            "nrmse": masked_nrmse(x, y, region),
            "psnr": float("inf") if mse == 0 else 10.0 * math.log10(peak**2 / mse),
            "voxels": int(region.sum()),
        }
    return out


def paper_convention_metrics(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """NRMSE, PSNR and SSIM of the masked images over whole axial slices, averaged over the brain's slices."""
    brain = np.asarray(mask, bool)
    x, y = np.asarray(pred, np.float64) * brain, np.asarray(ref, np.float64) * brain
    rows = []
    for z in np.flatnonzero(brain.reshape(-1, brain.shape[-1]).any(0)):
        xs, ys = x[..., z], y[..., z]
        peak = float(ys.max())
        mse = float(np.mean((xs - ys) ** 2))
        rows.append(
            (
                math.sqrt(np.sum((xs - ys) ** 2) / max(np.sum(ys**2), 1e-30)),
                float("inf") if mse == 0 else 10.0 * math.log10(peak**2 / mse),
                structural_similarity(
                    xs, ys, data_range=peak, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
                ),
            )
        )
    nrmse, psnr, ssim = (float(np.mean(v)) for v in zip(*rows))
    return {"nrmse": nrmse, "psnr": psnr, "ssim": ssim}
