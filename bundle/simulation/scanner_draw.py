"""Domain randomisation: the scanner, reconstruction protocol and background estimation of one simulated subject.

A site's study differs from the default dataset in its voxel size, its detector resolution, its post-filter, its
count level, and a reconstruction whose model never exactly matches the data (the PSF in OSEM is a fitted
approximation; scatter and randoms are estimated). `draw_scanner` draws all of these per subject from the ranges in
`SCANNER_RANGES`. The subject is then simulated and reconstructed on its own grid (`native_geometry`) and resampled
trilinearly onto the preset's grid, as inference resamples a study to the network's spacing.

With `physics_spread='broad'` a subject also gets a `PhysicsDraw` (`draw_physics`, its own stream, so the scanner
draw and everything else about the subject are unchanged): a detector response with a wide tail, OSEM with or
without resolution modelling, 2-4 iterations of 14 or 28 subsets, and other scatter and randoms fractions; what
issue 29 lists as the physics a site's scanner may differ in.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from .presets import Geometry

__all__ = [
    "PHYSICS_RANGES",
    "PhysicsDraw",
    "SCANNER_RANGES",
    "ScannerDraw",
    "draw_physics",
    "draw_scanner",
    "estimated_background_factors",
    "log_uniform_factor",
    "native_geometry",
    "resample_to_grid",
]

SCANNER_RANGES: dict[str, tuple[float, float]] = {
    "in_plane_voxel_mm": (1.2, 3.0),
    "axial_voxel_mm": (2.0, 3.3),
    "detector_fwhm_mm": (3.5, 6.5),  # in-plane and axial drawn separately
    "postfilter_fwhm_mm": (0.0, 5.0),  # a quarter of the subjects have none
    "psf_error_mm": (-1.0, 1.0),  # OSEM's PSF FWHM minus the data model's
    "scatter_estimate_scale": (0.85, 1.15),  # the scatter estimate's global error
    "scatter_estimate_tilt": (-0.1, 0.1),  # and a radial tilt of it (relative, at the edge of the field of view)
    "randoms_estimate_scale": (0.95, 1.05),
}
NO_POSTFILTER_PROBABILITY = 0.25
PHYSICS_RANGES: dict[str, tuple[float, float]] = {
    "psf_tail_fraction": (0.05, 0.35),  # share of the detector response in a wide tail (when it has one)
    "psf_tail_factor": (2.5, 4.0),  # the tail's FWHM over the core's
    "scatter_fraction": (0.25, 0.45),
    "randoms_fraction": (0.05, 0.25),
}
NO_TAIL_PROBABILITY = 0.5
NO_PSF_MODEL_PROBABILITY = 0.4  # OSEM without resolution modelling, as many sites still reconstruct
ITERATION_CHOICES = (2, 3, 4)
SUBSET_CHOICES = (14, 28)  # both divide every drawn grid's views (a multiple of SUBSETS)
VIEWS_PER_PIXEL = 168 / 128  # the quick preset's angular sampling, kept on every grid
SUBSETS = 28


@dataclass(frozen=True)
class ScannerDraw:
    """One subject's scanner and reconstruction protocol."""

    in_plane_voxel_mm: float
    axial_voxel_mm: float
    detector_fwhm_mm: float
    axial_fwhm_mm: float
    postfilter_fwhm_mm: float
    psf_error_mm: float
    scatter_estimate_scale: float
    scatter_estimate_tilt: float
    randoms_estimate_scale: float

    @property
    def recon_psf_mm(self) -> tuple[float, float]:
        """(in-plane, axial) FWHM of the PSF that OSEM models (never below 0.5 mm)."""
        return (max(self.detector_fwhm_mm + self.psf_error_mm, 0.5), max(self.axial_fwhm_mm + self.psf_error_mm, 0.5))

    def as_dict(self) -> dict[str, float]:
        return {key: round(float(value), 4) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class PhysicsDraw:
    """One subject's broadened physics: detector response shape, reconstruction algorithm and background."""

    psf_tail_fraction: float
    psf_tail_factor: float
    model_psf: bool
    iterations: int
    subsets: int
    scatter_fraction: float
    randoms_fraction: float

    def as_dict(self) -> dict[str, float | int | bool]:
        return {k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def draw_physics(rng: np.random.Generator) -> PhysicsDraw:
    """Draw the broadened physics of one subject from `PHYSICS_RANGES` and the choices above."""

    def uniform(name: str) -> float:
        return float(rng.uniform(*PHYSICS_RANGES[name]))

    tail, factor = uniform("psf_tail_fraction"), uniform("psf_tail_factor")
    if rng.random() < NO_TAIL_PROBABILITY:
        tail = 0.0
    return PhysicsDraw(
        psf_tail_fraction=tail,
        psf_tail_factor=factor,
        model_psf=bool(rng.random() >= NO_PSF_MODEL_PROBABILITY),
        iterations=int(rng.choice(ITERATION_CHOICES)),
        subsets=int(rng.choice(SUBSET_CHOICES)),
        scatter_fraction=uniform("scatter_fraction"),
        randoms_fraction=uniform("randoms_fraction"),
    )


def draw_scanner(rng: np.random.Generator, base: Geometry) -> ScannerDraw:
    """Draw a scanner and protocol. Voxel sizes are drawn uniformly, then rounded to those of an integer matrix (even
    in-plane) over the base field of view; on a preset coarser than 2 mm (the tests' tiny one) their ranges are
    scaled by its voxel size / 2 mm, so that a test cohort stays cheap."""
    fov_xy = base.shape[0] * base.voxel_size_mm[0]
    fov_z = base.shape[2] * base.voxel_size_mm[2]
    coarse = max(1.0, min(base.voxel_size_mm) / 2.0)  # a preset coarser than 2 mm (tests) scales the voxel ranges
    n_xy = int(round(fov_xy / (coarse * float(rng.uniform(*SCANNER_RANGES["in_plane_voxel_mm"]))) / 2.0)) * 2
    n_z = int(round(fov_z / (coarse * float(rng.uniform(*SCANNER_RANGES["axial_voxel_mm"])))))

    def uniform(name: str) -> float:
        return float(rng.uniform(*SCANNER_RANGES[name]))

    detector, axial = uniform("detector_fwhm_mm"), uniform("detector_fwhm_mm")
    postfilter = uniform("postfilter_fwhm_mm")
    if rng.random() < NO_POSTFILTER_PROBABILITY:
        postfilter = 0.0
    return ScannerDraw(
        in_plane_voxel_mm=fov_xy / n_xy,
        axial_voxel_mm=fov_z / n_z,
        detector_fwhm_mm=detector,
        axial_fwhm_mm=axial,
        postfilter_fwhm_mm=postfilter,
        psf_error_mm=uniform("psf_error_mm"),
        scatter_estimate_scale=uniform("scatter_estimate_scale"),
        scatter_estimate_tilt=uniform("scatter_estimate_tilt"),
        randoms_estimate_scale=uniform("randoms_estimate_scale"),
    )


def native_geometry(base: Geometry, draw: ScannerDraw) -> Geometry:
    """The subject's own grid: the base field of view at the drawn voxel size, with as many views per pixel."""
    n_xy = int(round(base.shape[0] * base.voxel_size_mm[0] / draw.in_plane_voxel_mm))
    n_z = int(round(base.shape[2] * base.voxel_size_mm[2] / draw.axial_voxel_mm))
    n_views = max(SUBSETS, SUBSETS * int(round(VIEWS_PER_PIXEL * n_xy / SUBSETS)))
    return Geometry(
        name=f"{base.name}-native",
        shape=(n_xy, n_xy, n_z),
        voxel_size_mm=(draw.in_plane_voxel_mm, draw.in_plane_voxel_mm, draw.axial_voxel_mm),
        n_views=n_views,
        counts_full_dose=base.counts_full_dose,
        axial_offset_mm=base.axial_offset_mm,
    )


def resample_to_grid(volume: np.ndarray, source: Geometry, target: Geometry, order: int) -> np.ndarray:
    """Resample an (x, y, z) volume between two grids centred on the same point (order 1 trilinear, 0 nearest);
    outside the source grid is 0."""
    src_vox, dst_vox = np.asarray(source.voxel_size_mm), np.asarray(target.voxel_size_mm)
    src_shape, dst_shape = np.asarray(source.shape, float), np.asarray(target.shape, float)
    scale = dst_vox / src_vox  # source index per target index
    offset = (src_shape - 1) / 2.0 - scale * (dst_shape - 1) / 2.0
    out = ndimage.affine_transform(
        volume.astype(np.float32 if order else volume.dtype),
        scale,
        offset=offset,
        output_shape=tuple(int(n) for n in target.shape),
        order=order,
        mode="constant",
        cval=0.0,
        prefilter=False,
    )
    return out.astype(volume.dtype) if order == 0 else out.astype(np.float32)


def estimated_background_factors(draw: ScannerDraw, n_bins: int) -> tuple[np.ndarray, float]:
    """Per-radial-bin factors of the scatter estimate, and the randoms estimate's factor."""
    radial = (np.arange(n_bins) - (n_bins - 1) / 2.0) / max((n_bins - 1) / 2.0, 1.0)
    scatter = draw.scatter_estimate_scale * (1.0 + draw.scatter_estimate_tilt * np.abs(radial))
    return scatter.astype(np.float32), float(draw.randoms_estimate_scale)


def log_uniform_factor(rng: np.random.Generator, spread: float) -> float:
    """A count-level factor drawn log-uniformly within x(1 -/+ spread)."""
    return math.exp(rng.uniform(math.log(1 - spread), math.log(1 + spread))) if spread > 0 else 1.0
