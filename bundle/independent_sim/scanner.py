"""The independent simulator's scanner: its own PSF, scikit-image's Radon transform slice by slice, attenuation,
detector efficiencies, scatter and randoms, Poisson counts thinned to each DRF, and a slice-by-slice OSEM (no PSF
model, unlike the bundle's) with a Gaussian post-filter."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.transform import iradon, radon

__all__ = ["ScannerSettings", "acquire_and_reconstruct", "heavy_tailed_psf"]


@dataclass(frozen=True)
class ScannerSettings:
    core_fwhm_mm: float = 4.2  # in-plane PSF: a Gaussian core ...
    tail_fwhm_mm: float = 11.0  # ... plus a wide Gaussian tail
    tail_fraction: float = 0.18
    axial_fwhm_mm: float = 4.8
    scatter_fraction: float = 0.4
    randoms_fraction: float = 0.2
    iterations: int = 3
    subsets: int = 8
    postfilter_fwhm_mm: float = 3.0
    counts_per_subject: float = 1.2e9  # full-dose prompts, before the subject's own factor (x0.6-1.6)


def _sigma(fwhm_mm: float, voxel_mm: float) -> float:
    return fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0))) / voxel_mm


def heavy_tailed_psf(volume: np.ndarray, voxel: tuple[float, ...], s: ScannerSettings) -> np.ndarray:
    """A Gaussian core plus a wide Gaussian tail in-plane, a Gaussian axially."""
    core = ndimage.gaussian_filter(volume, [_sigma(s.core_fwhm_mm, voxel[0])] * 2 + [_sigma(s.axial_fwhm_mm, voxel[2])])
    tail = ndimage.gaussian_filter(volume, [_sigma(s.tail_fwhm_mm, voxel[0])] * 2 + [_sigma(s.axial_fwhm_mm, voxel[2])])
    return (1 - s.tail_fraction) * core + s.tail_fraction * tail


def _osem_slice(counts, factors, background, theta, subsets, iterations, pixel_mm):
    """OSEM of one slice; `factors` (bins x views) scales the Radon transform (efficiency, attenuation, count
    scale), `background` the expected scatter + randoms."""
    n = counts.shape[0]
    x = np.ones((n, n), np.float64)
    order = [np.arange(k, len(theta), subsets) for k in range(subsets)]
    for _ in range(iterations):
        for views in order:
            th = theta[views]
            f = factors[:, views]
            sensitivity = iradon(f, th, filter_name=None, output_size=n, circle=True)
            forward = f * radon(x, th, circle=True) * pixel_mm + background[:, views]
            ratio = counts[:, views] / np.maximum(forward, 1e-9)
            update = iradon(f * ratio, th, filter_name=None, output_size=n, circle=True)
            x = x * np.where(sensitivity > 1e-9 * sensitivity.max(), update / np.maximum(sensitivity, 1e-12), 0.0)
    return x


def acquire_and_reconstruct(
    activity: np.ndarray,
    mu: np.ndarray,
    voxel: tuple[float, float, float],
    drfs: tuple[float, ...],
    rng: np.random.Generator,
    s: ScannerSettings = ScannerSettings(),
) -> dict[str, np.ndarray]:
    """Reconstructions {'full': ..., 'drf<D>': ...} of one subject (kBq/mL), the DRFs nested by binomial thinning."""
    nx, _, nz = activity.shape
    n_views = int(np.ceil(nx * 1.1 / s.subsets)) * s.subsets
    theta = np.linspace(0.0, 180.0, n_views, endpoint=False)
    blurred = heavy_tailed_psf(activity.astype(np.float64), voxel, s)
    trues, factors = [], []
    n_bins = radon(np.zeros((nx, nx)), theta[:1], circle=True).shape[0]
    efficiency = rng.uniform(0.9, 1.1, size=(n_bins, 1))  # detector efficiencies, known to the reconstruction
    for z in range(nz):
        attenuation = np.exp(-radon(mu[..., z].astype(np.float64), theta, circle=True) * voxel[0])
        f = efficiency * attenuation
        factors.append(f)
        trues.append(f * radon(blurred[..., z], theta, circle=True) * voxel[0])
    total = sum(float(t.sum()) for t in trues)
    count_scale = s.counts_per_subject * rng.uniform(0.6, 1.6) * (1 - s.scatter_fraction - s.randoms_fraction) / total
    reconstructions: dict[str, list[np.ndarray]] = {"full": [], **{f"drf{d:g}": [] for d in drfs}}
    for z in range(nz):
        t = trues[z] * count_scale
        scatter = (
            ndimage.gaussian_filter1d(t, 12.0, axis=0)
            * s.scatter_fraction
            / (1 - s.scatter_fraction - s.randoms_fraction)
        )
        randoms = np.full_like(t, t.mean() * s.randoms_fraction / (1 - s.scatter_fraction - s.randoms_fraction))
        background = scatter + randoms
        counts = rng.poisson(t + background).astype(np.float64)
        reconstructions["full"].append(
            _osem_slice(counts, factors[z] * count_scale, background, theta, s.subsets, s.iterations, voxel[0])
        )
        kept, previous = counts, 1.0
        for d in sorted(drfs):
            kept = rng.binomial(kept.astype(np.int64), previous / d).astype(np.float64)
            previous = d
            reconstructions[f"drf{d:g}"].append(
                _osem_slice(
                    kept, factors[z] * count_scale / d, background / d, theta, s.subsets, s.iterations, voxel[0]
                )
            )
    out = {}
    for name, slices in reconstructions.items():
        volume = np.stack(slices, axis=-1)
        sigma = [_sigma(s.postfilter_fwhm_mm, v) for v in voxel]
        out[name] = np.clip(ndimage.gaussian_filter(volume, sigma), 0, None).astype(np.float32)
    return out
