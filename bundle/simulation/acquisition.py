"""Count-level acquisition: expected prompts, Poisson full-dose counts and binomial thinning to low dose.

Expected prompts per sinogram bin are y_bar = s * a * P(B x) + scatter + randoms, with a the attenuation
factors exp(-P mu), B the detector resolution blur and s a sensitivity chosen so that the subject's
expected prompts equal its count level. Scatter is the attenuated trues smoothed heavily along the radial
and angular directions; randoms are flat within a slice's sinogram. Both are known to the reconstruction, unless an estimate with errors
is given (domain randomisation: `scanner_draw`), and the reconstruction's PSF may differ from the data model's.

Low dose keeps each recorded event with probability 1/DRF: y_low ~ Binomial(y_full, 1/DRF), which is what
keeping a random subset of list-mode events does, and keeps the pair matched event by event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from scipy import ndimage

from ..resolution import fwhm_to_sigma
from .projector import GaussianBlur3d, ParallelBeamProjector, PETSystemModel, SinogramBlur

__all__ = ["Acquisition", "ScannerModel", "nested_thinning", "poisson_counts", "simulate_acquisition", "thin_counts"]

SCATTER_FWHM_MM = 150.0  # width of the smooth scatter distribution in the sinogram


@dataclass(frozen=True)
class ScannerModel:
    """The physics of the simulated scanner: resolution and the background fractions of the prompts."""

    detector_fwhm_mm: float  # in-plane resolution of the data model
    axial_fwhm_mm: float  # axial resolution of the data model
    scatter_fraction: float  # scatter / prompts
    randoms_fraction: float  # randoms / prompts
    psf_tail_fraction: float = 0.0  # share of the detector response in a wide tail (0: a Gaussian response)
    psf_tail_factor: float = 1.0  # the tail's FWHM over the core's

    def response_fwhm_mm(self) -> list[tuple[float, tuple[float, float]]]:
        """The detector response as (weight, (in-plane, axial) FWHM) Gaussians: the core, and the tail if any. The
        tail is wider in-plane only (inter-crystal scatter and penetration spread across the ring)."""
        core = (self.detector_fwhm_mm, self.axial_fwhm_mm)
        if self.psf_tail_fraction <= 0.0:
            return [(1.0, core)]
        tail = (self.detector_fwhm_mm * self.psf_tail_factor, self.axial_fwhm_mm)
        return [(1.0 - self.psf_tail_fraction, core), (self.psf_tail_fraction, tail)]


@dataclass
class Acquisition:
    """Expected data of one subject and the models needed to reconstruct it."""

    expected_trues: torch.Tensor  # (nz, views, bins)
    background: torch.Tensor  # expected scatter + randoms, (nz, views, bins)
    recon_model: PETSystemModel  # what OSEM assumes (attenuation and sensitivity; PSF if configured)
    sensitivity: float
    count_level: float
    recon_background: torch.Tensor | None = None  # what OSEM assumes for scatter + randoms (None: the true background)

    @property
    def assumed_background(self) -> torch.Tensor:
        return self.background if self.recon_background is None else self.recon_background

    @property
    def expected_prompts(self) -> torch.Tensor:
        return self.expected_trues + self.background


def _to_stack(volume: np.ndarray, device: torch.device) -> torch.Tensor:
    """(x, y, z) numpy volume -> (z, x, y) float32 tensor, the projector's layout."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(volume, -1, 0), dtype=np.float32)).to(device)


def simulate_acquisition(
    activity: np.ndarray,
    mu_map_per_cm: np.ndarray,
    projector: ParallelBeamProjector,
    voxel_size_mm: tuple[float, float, float],
    scanner: ScannerModel,
    count_level: float,
    model_psf: bool = True,
    recon_psf_fwhm_mm: tuple[float, float] | None = None,
    background_estimate: tuple[np.ndarray, float] | None = None,
    resolution_space: str = "image",
) -> Acquisition:
    """Expected prompts of a subject at full dose, with its reconstruction model (with the PSF when `model_psf`).

    `recon_psf_fwhm_mm`: (in-plane, axial) FWHM of OSEM's PSF when it differs from the data model's.
    `background_estimate`: (per-radial-bin factors of the scatter, factor of the randoms) that OSEM's scatter and
    randoms estimate is off by; None: OSEM knows them exactly.
    `resolution_space`: 'image' (a Gaussian blur of the activity, the default dataset's) or 'sinogram' (of the
    line integrals, radially and axially: `SinogramBlur`), for the data model and OSEM's PSF alike.
    """
    device = projector.device
    vox = voxel_size_mm
    x = _to_stack(activity, device)
    mu = _to_stack(mu_map_per_cm, device) / 10.0  # 1/cm -> 1/mm: line integrals are in mm
    attenuation = torch.exp(-projector.A(mu))
    # the detector response's Gaussians (the core first: OSEM's PSF unless `recon_psf_fwhm_mm` says otherwise)
    if resolution_space == "sinogram":
        response = [(w, SinogramBlur(f, projector.bin_size_mm, vox[2])) for w, f in scanner.response_fwhm_mm()]
        blur, sinogram_blur = None, response[0][1]
        line_integrals = projector.A(x)
        geometric = attenuation * sum(w * b.A(line_integrals) for w, b in response)
    else:
        response = [(w, GaussianBlur3d(f, vox)) for w, f in scanner.response_fwhm_mm()]
        blur, sinogram_blur = response[0][1], None
        geometric = attenuation * projector.A(sum(w * b.A(x) for w, b in response))
    trues_fraction = 1.0 - scanner.scatter_fraction - scanner.randoms_fraction
    sensitivity = float(count_level * trues_fraction / float(geometric.sum()))
    trues = sensitivity * geometric

    bin_mm = projector.bin_size_mm
    sigma_bins = fwhm_to_sigma(SCATTER_FWHM_MM) / bin_mm
    scatter_np = ndimage.gaussian_filter(
        trues.cpu().numpy(), sigma=(1.0, 4.0, sigma_bins), mode=("nearest", "wrap", "constant")
    )
    scatter = torch.from_numpy(scatter_np.astype(np.float32)).to(device)
    scatter *= scanner.scatter_fraction * count_level / max(float(scatter.sum()), 1e-12)
    per_slice = trues.sum(dim=(1, 2), keepdim=True)
    randoms = (
        per_slice / per_slice.sum() * scanner.randoms_fraction * count_level / (projector.n_views * projector.n_bins)
    )
    background = scatter + randoms.expand_as(trues)
    recon_background = None
    if background_estimate is not None:
        scatter_factors, randoms_factor = background_estimate
        factors = torch.from_numpy(np.asarray(scatter_factors, dtype=np.float32)).to(device)
        recon_background = scatter * factors + randoms_factor * randoms.expand_as(trues)

    if recon_psf_fwhm_mm is not None:  # OSEM's PSF differs from the data model's
        if resolution_space == "sinogram":
            sinogram_blur = SinogramBlur(recon_psf_fwhm_mm, projector.bin_size_mm, vox[2])
        else:
            blur = GaussianBlur3d(recon_psf_fwhm_mm, vox)
    # the data model always blurs; the standard-OSEM reconstruction model only when model_psf is set
    recon_model = PETSystemModel(
        projector, sensitivity * attenuation, blur if model_psf else None, sinogram_blur if model_psf else None
    )
    return Acquisition(trues, background, recon_model, sensitivity, float(count_level), recon_background)


def poisson_counts(expected: torch.Tensor, rng: np.random.Generator, sampler: str = "legacy") -> torch.Tensor:
    """Poisson counts drawn with numpy's generator (seeded).

    `legacy` (numpy's `poisson`, the default dataset's) consumes a variable number of random numbers per bin, so an
    expected count that differs in its last bit (float sums in another order: another CPU or thread count) shifts
    the stream for every later bin. `inverse_cdf` draws exactly one uniform per bin and inverts the Poisson CDF, so
    such a difference can change only a bin whose uniform lies within rounding of a CDF step.
    """
    lam = expected.detach().cpu().numpy().astype(np.float64)
    if sampler == "inverse_cdf":
        from scipy.stats import poisson

        counts = poisson.ppf(rng.random(lam.shape), lam)
    else:
        counts = rng.poisson(lam)
    return torch.from_numpy(counts.astype(np.float32)).to(expected.device)


def thin_counts(counts: torch.Tensor, drf: float, rng: np.random.Generator) -> torch.Tensor:
    """Keep each event with probability 1/DRF: Binomial(counts, 1/DRF)."""
    n = counts.detach().cpu().numpy().astype(np.int64)
    kept = rng.binomial(n, 1.0 / float(drf))
    return torch.from_numpy(kept.astype(np.float32)).to(counts.device)


def _binomial(n: np.ndarray, p: float, rng: np.random.Generator, sampler: str) -> np.ndarray:
    """Binomial(n, p) per bin: numpy's sampler (`legacy`) or one uniform per bin through the inverse CDF."""
    if sampler == "inverse_cdf":
        from scipy.stats import binom

        return binom.ppf(rng.random(n.shape), n, p).astype(np.int64)
    return rng.binomial(n, p)


def nested_thinning(
    counts: torch.Tensor,
    drfs: Sequence[float],
    rng_for: Callable[[float], np.random.Generator],
    sampler: str = "legacy",
) -> dict[float, torch.Tensor]:
    """Nested low-dose count sets, as subsampling one list-mode acquisition gives them: each full-dose event is kept at
    DRF D with probability 1/D, and an event kept at a higher DRF is kept at every lower DRF too, so the DRF-200
    events are a subset of the DRF-100 events, which are a subset of the DRF-50 events, and so on.

    Built from the lowest dose up: the highest DRF draws Binomial(full, 1 / D) from its own stream `rng_for(D)`; each
    next level adds Binomial(full - previous, (1/D - 1/D_prev) / (1 - 1/D_prev)) events. This is the same joint
    distribution as thinning each level from the one above it by D_above / D, and it keeps the lowest dose exactly
    what independent thinning with the same stream gives (the default dataset's DRF-200 images are unchanged).
    `sampler` as in `poisson_counts`: `inverse_cdf` keeps a one-bin difference in `counts` from shifting the rest.
    """
    full = counts.detach().cpu().numpy().astype(np.int64)
    out: dict[float, torch.Tensor] = {}
    kept, p_kept = np.zeros_like(full), 0.0
    for drf in sorted((float(d) for d in drfs), reverse=True):
        p = 1.0 / drf
        rng = rng_for(drf)
        if p_kept == 0.0:
            kept = _binomial(full, p, rng, sampler)
        else:
            kept = kept + _binomial(full - kept, (p - p_kept) / (1.0 - p_kept), rng, sampler)
        p_kept = p
        out[drf] = torch.from_numpy(kept.astype(np.float32)).to(counts.device)
    return out
