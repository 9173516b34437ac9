"""Everything measured on one denoised volume against its references, in one call: whole-volume metrics (and the
paper's convention), regional metrics, per-lesion quantification against the full-dose image and the phantom, and
the white-matter noise."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from .image_quality import image_metrics
from .lesion import check_lesion_map, lesion_bias, white_matter_cv, white_matter_noise
from .regions import brain_regions, paper_convention_metrics, regional_metrics

__all__ = ["evaluate_volume", "uniform_white_matter"]


PURE_WHITE_MATTER_MM = 4.0  # depth inside the white matter of the region whose CV measures noise


def uniform_white_matter(
    regions: dict[str, np.ndarray], lesions: np.ndarray | None, voxel_size_mm: tuple[float, float, float]
) -> np.ndarray | None:
    """Pure white matter: voxels of the brain's interior at least `PURE_WHITE_MATTER_MM` inside the white matter
    (away from grey matter, CSF and the partial volume at their borders) and 10 mm or more from every lesion (None
    without a tissue map or when too little is left), so that its CV reads noise, not anatomy."""
    if "white_matter" not in regions or "interior" not in regions:
        return None
    depth = ndimage.distance_transform_edt(regions["white_matter"], sampling=voxel_size_mm)
    region = (depth > PURE_WHITE_MATTER_MM) & regions["interior"]
    if lesions is not None and lesions.any():
        region &= ndimage.distance_transform_edt(lesions == 0, sampling=voxel_size_mm) >= 10.0
    return region if region.sum() >= 2 else None


def evaluate_volume(
    pred: np.ndarray,
    ref: np.ndarray,
    mask: np.ndarray,
    voxel_size_mm: tuple[float, float, float],
    lesions: np.ndarray | None = None,
    truth: np.ndarray | None = None,
    tissue: np.ndarray | None = None,
) -> dict[str, Any]:
    """{"nrmse", "psnr", "ssim", "paper_convention", "regions", "lesions", "white_matter_cv", "white_matter_noise"}
    of `pred` against the
    full-dose `ref` (lesion entries also against the phantom `truth` when given, as `*_vs_truth`)."""
    x, y, brain = np.asarray(pred, np.float64), np.asarray(ref, np.float64), np.asarray(mask, bool)
    out: dict[str, Any] = dict(image_metrics(x, y, brain))
    out["paper_convention"] = paper_convention_metrics(x, y, brain)
    regions = brain_regions(brain, voxel_size_mm, tissue)
    out["regions"] = regional_metrics(x, y, brain, regions)
    labels = None if lesions is None else check_lesion_map(lesions, y.shape)
    out["lesions"] = {} if labels is None else lesion_bias(x, y, labels, brain, voxel_size_mm)
    if labels is not None and truth is not None:
        for label, values in lesion_bias(x, np.asarray(truth, np.float64), labels, brain, voxel_size_mm).items():
            out["lesions"][label].update({f"{k}_vs_truth": v for k, v in values.items() if k != "voxels"})
    wm = uniform_white_matter(regions, labels, voxel_size_mm)
    out["white_matter_cv"] = None if wm is None else white_matter_cv(x, wm)
    out["white_matter_noise"] = None if wm is None else white_matter_noise(x, y, wm)
    return out
