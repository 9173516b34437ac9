"""Ordered-subsets expectation maximisation with a known additive background."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ..resolution import fwhm_to_sigma
from .projector import PETSystemModel

__all__ = ["osem", "postfilter"]


def osem(
    counts: torch.Tensor,
    model: PETSystemModel,
    background: torch.Tensor,
    iterations: int,
    scale: float = 1.0,
    initial: torch.Tensor | None = None,
    eps: float = 1e-9,
) -> torch.Tensor:
    """Reconstruct a stack of slices from `counts` of shape (nz, views, bins).

    The expected data are `scale * (model.A(x) + background)`: a low-dose acquisition at dose-reduction factor
    DRF uses `scale = 1 / DRF`, so that its image is in the same activity units as the full-dose image.
    Subsets are the projector's (views k, k + S, ...). Pixels outside the field of view stay zero.

    Returns:
        The image stack (nz, n, n) after `iterations` full passes over the subsets.
    """
    projector = model.projector
    nz = counts.shape[0]
    fov = projector.fov_mask().to(counts.dtype)
    if initial is None:
        ones = torch.ones((nz, projector.n, projector.n), dtype=counts.dtype, device=counts.device) * fov
        expected = scale * model.A(ones)
        level = (counts.sum(dim=(1, 2)) - scale * background.sum(dim=(1, 2))).clamp_min(0) / expected.sum(dim=(1, 2))
        x = ones * level.clamp_min(eps)[:, None, None]
    else:
        x = initial.clone() * fov
    views = [torch.as_tensor(projector.subset_views(s), device=counts.device) for s in range(projector.n_subsets)]
    sensitivity = []
    for s in range(projector.n_subsets):
        ones_s = torch.ones((nz, len(views[s]), projector.n_bins), dtype=counts.dtype, device=counts.device)
        sensitivity.append(scale * model.A_adjoint(ones_s, s))
    for _ in range(iterations):
        for s in range(projector.n_subsets):
            y_s = counts[:, views[s]]
            b_s = background[:, views[s]]
            ratio = y_s / (scale * (model.A(x, s) + b_s)).clamp_min(eps)
            update = scale * model.A_adjoint(ratio, s)
            sens = sensitivity[s]
            x = torch.where(sens > eps, x * update / sens.clamp_min(eps), torch.zeros_like(x)) * fov
    return x


def postfilter(x: np.ndarray, fwhm_mm: float, voxel_size_mm: tuple[float, float, float]) -> np.ndarray:
    """Gaussian post-filter (same FWHM in-plane and axially) of an (x, y, z) volume; 0 leaves it unchanged.

    The boundary repeats the edge voxels, so the end slices keep their level (unlike the zero-boundary
    resolution model, which must be self-adjoint).
    """
    if fwhm_mm <= 0:
        return x
    sigma = [fwhm_to_sigma(fwhm_mm) / v for v in voxel_size_mm]
    return ndimage.gaussian_filter(x, sigma=sigma, mode="nearest").astype(x.dtype)
