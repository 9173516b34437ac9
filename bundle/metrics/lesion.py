"""Lesion quantification as PET readers measure it: SUVmean, SUVmax and SUVpeak of every lesion, their bias against a
reference image, contrast recovery against a local background, and the noise (coefficient of variation) of uniform
white matter.

SUV is activity divided by injected dose per body weight; every quantity here is either a ratio of two images of the
same study (bias, contrast) or scale-free (CV), so the images may be in Bq/mL, kBq/mL or SUV alike.

- SUVmean: mean over the lesion's voxels.
- SUVmax: the highest voxel in the lesion.
- SUVpeak (PERCIST 1.0): the mean inside a 1 cm^3 sphere (radius 6.2 mm) placed where that mean is highest, its centre
  inside the lesion. The sphere holds the voxels whose centres lie within the radius of the centre voxel's, with the
  image's voxel size; near the image border only the voxels inside the image count.
- Contrast recovery of image x against reference y: (x_L / x_B - 1) / (y_L / y_B - 1), with L the lesion mean and B
  the mean of a background shell 3 to 9 mm outside the lesion (inside the brain, outside every lesion). 1 is perfect;
  a hot lesion smoothed into its surroundings gives less than 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import InputDataError

__all__ = [
    "PEAK_SPHERE_ML",
    "background_shell",
    "bias_pct",
    "check_lesion_map",
    "contrast_recovery",
    "lesion_bias",
    "lesion_values",
    "peak_sphere",
    "reference_contrast",
    "suv_peak",
    "white_matter_cv",
    "white_matter_noise",
]

PEAK_SPHERE_ML = 1.0
"""Volume of the SUVpeak sphere in cm^3 (PERCIST)."""


def peak_sphere(voxel_size_mm: tuple[float, float, float], volume_ml: float = PEAK_SPHERE_ML) -> np.ndarray:
    """Boolean kernel of the voxels whose centres lie within the radius of a `volume_ml` sphere of the centre voxel."""
    radius = (3.0 * volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)  # mm
    half = [int(math.floor(radius / v)) for v in voxel_size_mm]
    grids = np.meshgrid(*[np.arange(-h, h + 1) * v for h, v in zip(half, voxel_size_mm)], indexing="ij")
    return sum(g**2 for g in grids) <= radius**2


def suv_peak(image: np.ndarray, lesion: np.ndarray, voxel_size_mm: tuple[float, float, float]) -> float:
    """The highest mean of the 1 cm^3 sphere centred on a voxel of `lesion` (voxels outside the image do not count)."""
    kernel = peak_sphere(voxel_size_mm).astype(np.float64)
    lesion = np.asarray(lesion, bool)
    # only sphere centres in the lesion count: work in the lesion's bounding box grown by the sphere's half-width
    # (clipped to the image, whose outside then counts as outside, as for the whole image)
    where = np.argwhere(lesion)
    half = np.asarray(kernel.shape) // 2
    lo, hi = np.maximum(where.min(0) - half, 0), np.minimum(where.max(0) + half + 1, lesion.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    crop = np.asarray(image, np.float64)[box]
    total = ndimage.correlate(crop, kernel, mode="constant", cval=0.0)
    count = ndimage.correlate(np.ones(crop.shape), kernel, mode="constant", cval=0.0)
    return float((total / count)[lesion[box]].max())


def background_shell(
    lesion: np.ndarray, all_lesions: np.ndarray, brain: np.ndarray, voxel_size_mm: tuple[float, float, float]
) -> np.ndarray:
    """The local background of a lesion: brain voxels 3 to 9 mm outside it and outside every lesion."""
    lesion = np.asarray(lesion, bool)
    # the shell lies within 9 mm of the lesion: measure distances in the lesion's box grown by that much
    where = np.argwhere(lesion)
    margin = np.ceil(9.0 / np.asarray(voxel_size_mm, float)).astype(int) + 1
    lo, hi = np.maximum(where.min(0) - margin, 0), np.minimum(where.max(0) + margin + 1, lesion.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    distance = ndimage.distance_transform_edt(~lesion[box], sampling=voxel_size_mm)
    shell = np.zeros(lesion.shape, bool)
    shell[box] = (
        (distance > 3.0) & (distance <= 9.0) & np.asarray(brain, bool)[box] & ~np.asarray(all_lesions, bool)[box]
    )
    return shell


def bias_pct(value: float, reference: float) -> float:
    """100 x (value / reference - 1)."""
    return float("nan") if reference == 0 else 100.0 * (value / reference - 1.0)


def lesion_values(image: np.ndarray, lesion: np.ndarray, voxel_size_mm: tuple[float, float, float]) -> dict[str, float]:
    """SUVmean, SUVmax and SUVpeak of one lesion (in the image's units)."""
    return {
        "suv_mean": float(image[lesion].mean()),
        "suv_max": float(image[lesion].max()),
        "suv_peak": suv_peak(image, lesion, voxel_size_mm),
    }


def contrast_recovery(image: np.ndarray, reference: np.ndarray, lesion: np.ndarray, background: np.ndarray) -> float:
    """(x_L / x_B - 1) / (y_L / y_B - 1): how much of the reference's lesion contrast the image keeps."""
    if not background.any():
        return float("nan")
    contrast = image[lesion].mean() / image[background].mean() - 1.0
    ref_contrast = reference[lesion].mean() / reference[background].mean() - 1.0
    return float("nan") if ref_contrast == 0 else float(contrast / ref_contrast)


def reference_contrast(reference: np.ndarray, lesion: np.ndarray, background: np.ndarray) -> float:
    """y_L / y_B - 1 of the reference: > 0 for a hot lesion, < 0 for a cold one (NaN without a background)."""
    if not background.any() or reference[background].mean() == 0:
        return float("nan")
    return float(reference[lesion].mean() / reference[background].mean() - 1.0)


def check_lesion_map(lesion_map: Any, shape: tuple[int, ...], name: str = "lesion map") -> np.ndarray:
    """An integer label map on the image's grid (0 background, one positive label per lesion), or a one-line error."""
    labels = np.squeeze(np.asarray(lesion_map))
    if labels.shape != tuple(shape):
        raise InputDataError(f"{name}: shape {labels.shape} differs from the image's {tuple(shape)} (another grid)")
    if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)) or labels.min() < 0:
        raise InputDataError(f"{name}: labels must be non-negative integers (one per lesion, 0 for background)")
    labels = labels.astype(np.int64)
    if not labels.any():
        raise InputDataError(f"{name}: no lesion voxels (every label is 0)")
    return labels


def lesion_bias(
    image: np.ndarray,
    reference: np.ndarray,
    lesion_map: np.ndarray,
    brain: np.ndarray,
    voxel_size_mm: tuple[float, float, float],
) -> dict[str, dict[str, float]]:
    """Per lesion label: bias of SUVmean, SUVmax and SUVpeak of `image` against `reference` in percent, contrast
    recovery against the reference, the reference's own lesion contrast (> 0 hot, < 0 cold) and the lesion's size in
    voxels."""
    labels = check_lesion_map(lesion_map, reference.shape)
    x, y = np.asarray(image, np.float64), np.asarray(reference, np.float64)
    out = {}
    for label in (int(v) for v in np.unique(labels) if v > 0):
        lesion = labels == label
        mine, ref = lesion_values(x, lesion, voxel_size_mm), lesion_values(y, lesion, voxel_size_mm)
        shell = background_shell(lesion, labels > 0, np.asarray(brain, bool), voxel_size_mm)
        out[str(label)] = {
            "suv_mean_bias_pct": bias_pct(mine["suv_mean"], ref["suv_mean"]),
            "suv_max_bias_pct": bias_pct(mine["suv_max"], ref["suv_max"]),
            "suv_peak_bias_pct": bias_pct(mine["suv_peak"], ref["suv_peak"]),
            "contrast_recovery": contrast_recovery(x, y, lesion, shell),
            "reference_contrast": reference_contrast(y, lesion, shell),
            "voxels": int(lesion.sum()),
        }
    return out


def white_matter_noise(image: np.ndarray, reference: np.ndarray, white_matter: np.ndarray) -> float:
    """SD of the error (image - reference) over the reference's mean in a white-matter region: the noise left in
    the image, free of the anatomy's own texture that the CV of the image also reads."""
    region = np.asarray(white_matter, bool)
    error = (np.asarray(image, np.float64) - np.asarray(reference, np.float64))[region]
    mean = float(np.asarray(reference, np.float64)[region].mean()) if region.any() else 0.0
    if error.size < 2 or mean == 0:
        return float("nan")
    return float(error.std(ddof=1) / mean)


def white_matter_cv(image: np.ndarray, white_matter: np.ndarray) -> float:
    """Coefficient of variation (sd / mean) of the image in a uniform white-matter region: the background noise."""
    values = np.asarray(image, np.float64)[np.asarray(white_matter, bool)]
    if values.size < 2 or values.mean() == 0:
        return float("nan")
    return float(values.std(ddof=1) / values.mean())
