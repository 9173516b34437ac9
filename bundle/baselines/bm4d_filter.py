"""BM4D (the `bm4d` package, free for non-commercial use only) in 3D, with a noise spectrum matched to OSEM's
spatially correlated noise.

Reconstructed PET noise is not white: the resolution model and the post-filter correlate it over several voxels, so
BM4D given a white-noise level (`noise_fwhm_mm` 0) either leaves the low frequencies of the noise or smooths edges
away. The noise here is modelled as white noise through a Gaussian kernel of `noise_fwhm_mm` (its power spectrum is
what `bm4d` takes as `sigma_psd`); `noise_correlation_fwhm_mm` measures that width from a low-/full-dose pair (the
lag-1 autocorrelation of their difference along each axis), so the grid can be centred on the data's own.

This module imports `bm4d` at import time; the rest of the bundle works without it (see `registry.available_baselines`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import bm4d
import numpy as np

from ..resolution import fwhm_to_sigma
from ..transforms.intensity import percentile_scale
from .base import VoxelSize

__all__ = ["BM4DFilter", "LICENCE_NOTE", "correlated_noise_psd", "noise_correlation_fwhm_mm"]

LICENCE_NOTE = "bm4d (Tampere University) is free for non-commercial use only; it is an optional extra of this bundle."


def correlated_noise_psd(shape: Sequence[int], sigma: float, fwhm_mm: float, voxel_size_mm: VoxelSize) -> np.ndarray:
    """The power spectrum, in `bm4d`'s convention (white noise of std s: s^2 x N everywhere), of noise of std `sigma`
    that is white noise through a Gaussian kernel of `fwhm_mm` (0: white)."""
    gain = np.ones(tuple(shape), dtype=np.float64)
    for axis, (n, voxel) in enumerate(zip(shape, voxel_size_mm)):
        width = fwhm_to_sigma(fwhm_mm) / float(voxel)  # the kernel's SD in voxels
        frequencies = np.fft.fftfreq(int(n))
        profile = np.exp(-((2 * np.pi * width * frequencies) ** 2))  # |FT of the kernel|^2 along this axis
        gain = gain * profile.reshape([-1 if a == axis else 1 for a in range(len(shape))])
    size = int(np.prod(shape))
    return gain * (size * sigma**2 / gain.mean())


def noise_correlation_fwhm_mm(low: np.ndarray, full: np.ndarray, mask: np.ndarray, voxel_size_mm: VoxelSize) -> float:
    """The FWHM (mm, the mean over the three axes) of the Gaussian kernel that would give white noise the lag-1
    autocorrelation that `low - full` has inside `mask`: for a kernel of SD s voxels, rho(1) = exp(-1 / (4 s^2))."""
    noise = np.where(mask, low - full, 0.0).astype(np.float64)
    noise[mask] -= noise[mask].mean()
    widths = []
    for axis, voxel in enumerate(voxel_size_mm):
        head = [slice(None)] * 3
        tail = [slice(None)] * 3
        head[axis], tail[axis] = slice(None, -1), slice(1, None)
        both = mask[tuple(head)] & mask[tuple(tail)]
        a, b = noise[tuple(head)][both], noise[tuple(tail)][both]
        rho = float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))
        if rho <= 0.0:
            widths.append(0.0)
            continue
        sd_voxels = np.sqrt(-1.0 / (4.0 * np.log(min(rho, 0.999))))
        widths.append(float(sd_voxels) * float(voxel) / fwhm_to_sigma(1.0))
    return float(np.mean(widths))


@contextmanager
def _numpy_trapz() -> Iterator[None]:
    """`bm4d` 4.2.5 (the newest) integrates a given noise spectrum with `np.trapz`, which NumPy 2.4 removed; lend it
    `np.trapezoid` (the same function) for the call only."""
    missing = not hasattr(np, "trapz")
    if missing:
        np.trapz = np.trapezoid  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if missing:
            del np.trapz


def _support_box(volume: np.ndarray, margin: int = 6) -> tuple[slice, ...]:
    """The bounding box of the head (voxels above 1 % of the 99.5th percentile), `margin` voxels wider."""
    support = volume > 0.01 * percentile_scale(volume)
    if not support.any():
        return tuple(slice(0, n) for n in volume.shape)
    box = []
    for axis in range(3):
        hit = np.flatnonzero(support.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(0, int(hit[0]) - margin), min(volume.shape[axis], int(hit[-1]) + margin + 1)))
    return tuple(box)


class BM4DFilter:
    """3D BM4D of the head's bounding box of the volume divided by its 99.5th percentile, given the spectrum of
    Gaussian-correlated noise of std `sigma` (in those normalised units) and width `noise_fwhm_mm`; both are tuned on
    training subjects. Outside the box the input is returned unchanged (background)."""

    name = "bm4d"
    tuning_slices = 4  # slow (about 2 min per 128 x 128 x 80 volume on 2 CPU cores): 4 slabs per tuning subject
    slab_half_width = 4  # a scored slice is filtered inside a slab of +-4 slices, so BM4D sees its 3D blocks
    # noise_fwhm_mm: white, and the correlation width of the OSEM noise (noise_correlation_fwhm_mm: 5.59 mm on
    # generalist-train sub-001 at DRF 200; the command is in the model card)
    default_grid = [{"sigma": s, "noise_fwhm_mm": f} for f in (0.0, 5.6) for s in (0.02, 0.04, 0.07, 0.12, 0.2, 0.35)]

    def __call__(
        self,
        volume: np.ndarray,
        voxel_size_mm: VoxelSize,
        sigma: float = 0.1,
        noise_fwhm_mm: float = 5.6,
        slices: np.ndarray | None = None,
        **_: Any,
    ) -> np.ndarray:
        scale = percentile_scale(volume)
        normalised = volume.astype(np.float32) / scale
        out = normalised.copy()
        box = _support_box(normalised)
        if slices is None:
            ranges = [(box[2].start, box[2].stop)]
        else:
            ranges = _slabs(slices, self.slab_half_width, volume.shape[2])
        for start, stop in ranges:
            region = (box[0], box[1], slice(start, stop))
            block = normalised[region]
            psd = correlated_noise_psd(block.shape, sigma, noise_fwhm_mm, voxel_size_mm)
            with _numpy_trapz():
                out[region] = bm4d.bm4d(block, psd).astype(np.float32)
        return out * scale


def _slabs(slices: Sequence[int], half_width: int, depth: int) -> list[tuple[int, int]]:
    """Merged [start, stop) slabs of +-`half_width` slices around each of `slices`."""
    merged: list[list[int]] = []
    for z in sorted(int(s) for s in slices):
        start, stop = max(0, z - half_width), min(depth, z + half_width + 1)
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return [(a, b) for a, b in merged]
