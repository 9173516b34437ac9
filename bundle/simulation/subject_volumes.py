"""One simulated subject's volumes: anatomy, lesions, acquisition at full dose and every nested DRF, OSEM, on the
preset's grid or (a randomised scanner) on the subject's own grid, resampled or not (`SimulationConfig.grid`).
`dataset` writes them; the randomness of each subject is described there."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import torch

from .acquisition import ScannerModel, nested_thinning, poisson_counts, simulate_acquisition, thin_counts
from .osem import osem, postfilter
from .phantom import Subject, grid_affine, make_subject, varied_tissue_model
from .presets import Geometry, SimulationConfig
from .projector import ParallelBeamProjector
from .scanner_draw import (
    draw_physics,
    draw_scanner,
    estimated_background_factors,
    log_uniform_factor,
    native_geometry,
    resample_to_grid,
)

__all__ = [
    "LABEL_VOLUMES",
    "build_projector",
    "crop_to_slab",
    "drf_tag",
    "simulate_subject_volumes",
    "subject_id",
]


def subject_id(index: int) -> str:
    return f"sub-{index + 1:03d}"


def drf_tag(drf: float) -> str:
    """'drf200' for 200.0, 'drf2.5' for 2.5."""
    return f"drf{int(drf)}" if float(drf).is_integer() else f"drf{drf:g}"


def build_projector(config: SimulationConfig, device: torch.device) -> ParallelBeamProjector:
    geo = config.geometry
    return ParallelBeamProjector(
        image_size=geo.shape[0],
        n_views=geo.n_views,
        pixel_size_mm=geo.voxel_size_mm[0],
        n_subsets=config.recon.subsets,
        device=device,
    )


def _stack_to_volume(stack: torch.Tensor) -> np.ndarray:
    """(z, x, y) tensor -> (x, y, z) float32 numpy volume."""
    return np.ascontiguousarray(np.moveaxis(stack.detach().cpu().numpy(), 0, -1), dtype=np.float32)


def simulate_subject_volumes(
    index: int,
    config: SimulationConfig,
    projector: ParallelBeamProjector,
    repeat_thinnings: Mapping[float, int] | None = None,
    dose_levels: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
    """Simulate subject `index`: returns volumes by name, the affine, and the subject's description.

    `repeat_thinnings` ({DRF: n}): also n independent thinnings of the same full-dose counts at each DRF, each
    reconstructed as the dose levels are (`pet_<drf tag>_rep<k>`), for the noise floor of a lesion's uptake; their
    streams are their own, so the dataset's images are unchanged. `dose_levels=False` skips reconstructing the
    dataset's dose levels (`config.drfs`), for runs that need only the repeats.

    With `config.scanner == 'randomised'` the subject is built, projected and reconstructed on its own drawn grid
    (`projector` is then unused) and every volume is resampled onto the preset's grid (`config.grid == 'preset'`) or
    kept on the subject's own grid with its affine ('native').
    """
    sid = subject_id(index)
    lesion_rng = np.random.default_rng([config.seed, index, 3]) if config.lesions in ("mix", "rich") else None
    anatomy_rng = np.random.default_rng([config.seed, index, 0])
    tissue, variation = None, None
    if config.anatomy == "varied":
        tissue, variation = varied_tissue_model(np.random.default_rng([config.seed, index, 5]))
    base = config.geometry
    draw = (
        draw_scanner(np.random.default_rng([config.seed, index, 4]), base) if config.scanner == "randomised" else None
    )
    physics = draw_physics(np.random.default_rng([config.seed, index, 7])) if config.physics_spread == "broad" else None
    rec = config.recon
    if physics is not None:
        rec = replace(rec, model_psf=physics.model_psf, iterations=physics.iterations, subsets=physics.subsets)
    geometry = base if draw is None else native_geometry(base, draw)
    if draw is not None:
        projector = _native_projector(geometry, rec.subsets, projector.device)
    subject = make_subject(
        sid, geometry, anatomy_rng, tissue=tissue, lesion_rng=lesion_rng, lesion_recipe=config.lesions
    )
    subject = crop_to_slab(subject, config) if draw is None else subject
    count_rng = np.random.default_rng([config.seed, index, 1])
    factor = log_uniform_factor(count_rng, config.count_spread)
    count_level = config.full_dose_counts * factor * subject.info.get("slab_activity_fraction", 1.0)
    if draw is None:
        scanner = ScannerModel(
            config.detector_fwhm_mm, config.axial_fwhm_mm, config.scatter_fraction, config.randoms_fraction
        )
        psf, background_estimate, postfilter_mm = None, None, config.recon.postfilter_fwhm_mm
    else:
        fractions_and_tail = (config.scatter_fraction, config.randoms_fraction, 0.0, 1.0)  # no tail: a Gaussian
        if physics is not None:
            fractions_and_tail = (
                physics.scatter_fraction,
                physics.randoms_fraction,
                physics.psf_tail_fraction,
                physics.psf_tail_factor,
            )
        scanner = ScannerModel(draw.detector_fwhm_mm, draw.axial_fwhm_mm, *fractions_and_tail)
        psf, postfilter_mm = draw.recon_psf_mm, draw.postfilter_fwhm_mm
        background_estimate = estimated_background_factors(draw, projector.n_bins)
    vox = geometry.voxel_size_mm
    acq = simulate_acquisition(
        subject.activity,
        subject.mu_map,
        projector,
        vox,
        scanner,
        count_level,
        model_psf=rec.model_psf,
        recon_psf_fwhm_mm=psf,
        background_estimate=background_estimate,
        resolution_space=config.resolution_space,
    )
    full_counts = poisson_counts(acq.expected_prompts, count_rng, config.count_sampler)

    def reconstruct(counts: torch.Tensor, drf: float) -> np.ndarray:
        image = osem(counts, acq.recon_model, acq.assumed_background, rec.iterations, scale=1.0 / drf)
        return postfilter(_stack_to_volume(image), postfilter_mm, vox)

    volumes = {
        "pet_full": reconstruct(full_counts, 1.0),
        "truth": subject.activity,
        "t1": subject.t1,
        "brain_mask": subject.brain_mask,
        "lesion_mask": subject.lesion_mask,
        "mu_map": subject.mu_map,
        "tissue": subject.tissue,
    }
    recorded = {"full": int(full_counts.sum().item())}
    chain = nested_thinning(
        full_counts,
        config.drfs,
        lambda drf: np.random.default_rng([config.seed, index, 2, int(round(drf * 1000))]),
        config.count_sampler,
    )
    for drf in config.drfs:
        recorded[drf_tag(drf)] = int(chain[drf].sum().item())
        if dose_levels:
            volumes[f"pet_{drf_tag(drf)}"] = reconstruct(chain[drf], drf)
    for drf, repeats in (repeat_thinnings or {}).items():
        for k in range(int(repeats)):
            rng = np.random.default_rng([config.seed, index, 6, int(round(float(drf) * 1000)), k])
            volumes[f"pet_{drf_tag(drf)}_rep{k}"] = reconstruct(thin_counts(full_counts, float(drf), rng), float(drf))
    info = dict(subject.info)
    info.update(
        {
            "count_level_prompts": round(count_level, 1),
            "count_level_factor": round(factor, 4),
            "recorded_prompts": recorded,
            "sensitivity": acq.sensitivity,
            "expected_trues": float(acq.expected_trues.sum()),
        }
    )
    if variation is not None:
        info["anatomy_variation"] = variation
    affine = subject.affine
    if draw is not None:
        info["scanner"] = dict(draw.as_dict(), native_shape=list(geometry.shape), stored_on=config.grid)
    if physics is not None:
        info["physics"] = physics.as_dict()
    if draw is not None and config.grid == "preset":
        volumes = {
            name: resample_to_grid(array, geometry, base, order=0 if name in LABEL_VOLUMES else 1)
            for name, array in volumes.items()
        }
        affine = grid_affine(base)
    return volumes, affine, info


LABEL_VOLUMES = ("brain_mask", "lesion_mask", "tissue")


@lru_cache(maxsize=4)
def _native_projector(geometry: Geometry, subsets: int, device: torch.device) -> ParallelBeamProjector:
    """The projector of a drawn grid (cached: its matrix takes seconds to build on fine grids)."""
    return ParallelBeamProjector(
        image_size=geometry.shape[0],
        n_views=geometry.n_views,
        pixel_size_mm=geometry.voxel_size_mm[0],
        n_subsets=subsets,
        device=device,
    )


def crop_to_slab(subject: Subject, config: SimulationConfig) -> Subject:
    """Keep only the configured slab of slices; the count level then follows the slab's share of activity."""
    keep = config.slab()
    if keep == slice(0, config.geometry.shape[2]):
        return subject
    fraction = float(subject.activity[..., keep].sum() / max(subject.activity.sum(), 1e-12))
    affine = subject.affine.copy()
    affine[:3, 3] = affine[:3, :3] @ np.array([0.0, 0.0, keep.start]) + affine[:3, 3]
    info = dict(subject.info, slab=[keep.start, keep.stop], slab_activity_fraction=round(fraction, 6))
    arrays = {
        name: np.ascontiguousarray(getattr(subject, name)[..., keep])
        for name in ("activity", "t1", "brain_mask", "lesion_mask", "mu_map", "tissue")
    }
    labelled = [x for x in info.get("lesions", []) if "label" in x]  # the mix: describe only lesions in the slab
    if labelled:
        voxels = {x["label"]: int((arrays["lesion_mask"] == x["label"]).sum()) for x in labelled}
        info["lesions"] = [dict(x, voxels=voxels[x["label"]]) for x in labelled if voxels[x["label"]] > 0]
    return Subject(subject_id=subject.subject_id, affine=affine, info=info, **arrays)
