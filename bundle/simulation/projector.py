"""Linear PET operators with an exact adjoint, on torch (GPU when present, all CPU threads otherwise).

The design follows deepinv's physics operators: every operator has a forward `A` and an adjoint `A_adjoint`
with `<A x, y> == <x, A_adjoint y>` to float rounding.

- `ParallelBeamProjector`: 2D parallel-beam line integrals (Joseph's method, linear interpolation along the
  ray's minor axis) applied to every axial slice of a stack. The system matrix is precomputed as sparse
  CSR blocks, one per OSEM subset, and the adjoint uses the explicitly transposed blocks, so the adjoint is
  exact by construction. Geometry matches `skimage.transform.radon` (angles in [0, 180), ray through
  the image centre at bin (n_bins - 1) / 2).
- `GaussianBlur3d`: separable Gaussian resolution model with zero boundary, which is self-adjoint.
- `SinogramBlur`: the same resolution applied to the sinogram (radially and axially), as a detector response is;
  for parallel beams it equals the image-space blur up to the projector's interpolation, at a fraction of the cost
  inside OSEM (an OSEM subset's sinogram is far smaller than the image).
- `PETSystemModel`: y_bar = m * S(P(B x)), with m the per-bin multiplicative factors (sensitivity times
  attenuation), B an image-space and S a sinogram-space resolution model (either may be absent), and its adjoint.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from ..resolution import fwhm_to_sigma

__all__ = [
    "ParallelBeamProjector",
    "GaussianBlur3d",
    "PETSystemModel",
    "SinogramBlur",
    "default_device",
]


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@lru_cache(maxsize=4)
def _joseph_matrix(n: int, n_views: int, n_bins: int, pixel_mm: float, bin_mm: float) -> sp.csr_matrix:
    """Sparse system matrix (n_views * n_bins, n * n) of line lengths in mm; rows are view-major."""
    centre = (n - 1) / 2.0
    offsets = (np.arange(n_bins) - (n_bins - 1) / 2.0) * (bin_mm / pixel_mm)  # in pixels
    rows, cols, vals = [], [], []
    steps = np.arange(n)
    bins = np.arange(n_bins)
    for view, theta in enumerate(np.arange(n_views) * np.pi / n_views):
        c, s = math.cos(theta), math.sin(theta)
        # a ray: (row, col) = centre + t * (-s, c) + u * (c, s)
        if abs(c) >= abs(s):  # step along rows
            u = (steps[None, :] - centre + offsets[:, None] * s) / c
            minor = centre + offsets[:, None] * c + u * s  # column position
            length = pixel_mm / abs(c)
            major_idx = np.broadcast_to(steps[None, :], minor.shape)
            by_rows = True
        else:  # step along columns
            u = (steps[None, :] - centre - offsets[:, None] * c) / s
            minor = centre - offsets[:, None] * s + u * c  # row position
            length = pixel_mm / abs(s)
            major_idx = np.broadcast_to(steps[None, :], minor.shape)
            by_rows = False
        lo = np.floor(minor).astype(np.int64)
        frac = minor - lo
        row_ids = np.broadcast_to((view * n_bins + bins)[:, None], minor.shape)
        for shift, weight in ((0, 1.0 - frac), (1, frac)):
            idx = lo + shift
            ok = (idx >= 0) & (idx < n) & (weight > 0)
            pix = (major_idx * n + idx) if by_rows else (idx * n + major_idx)
            rows.append(row_ids[ok])
            cols.append(pix[ok])
            vals.append((weight * length)[ok])
    mat = sp.csr_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_views * n_bins, n * n),
    )
    mat.sum_duplicates()
    return mat


def _to_torch_csr(mat: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    mat = mat.tocsr()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        return torch.sparse_csr_tensor(
            torch.from_numpy(mat.indptr.astype(np.int64)),
            torch.from_numpy(mat.indices.astype(np.int64)),
            torch.from_numpy(mat.data.astype(np.float32)),
            size=mat.shape,
            device=device,
            check_invariants=False,
        )


class ParallelBeamProjector:
    """2D parallel-beam projector applied slice by slice to a stack of shape (nz, n, n).

    Args:
        image_size: in-plane matrix size n (square images).
        n_views: number of projection angles over [0, 180) degrees.
        n_bins: radial bins per view (default n, the inscribed field of view).
        pixel_size_mm: in-plane pixel size; line integrals are in mm.
        bin_size_mm: radial bin width (default: the pixel size).
        n_subsets: OSEM subsets; subset k holds views k, k + n_subsets, ... (must divide n_views).
        device: torch device (default CUDA when present).
    """

    def __init__(
        self,
        image_size: int,
        n_views: int,
        n_bins: int | None = None,
        pixel_size_mm: float = 1.0,
        bin_size_mm: float | None = None,
        n_subsets: int = 1,
        device: torch.device | str | None = None,
    ) -> None:
        if image_size < 2 or n_views < 1:
            raise ValueError(f"projector: image_size {image_size} and n_views {n_views} must be positive")
        if n_subsets < 1 or n_views % n_subsets:
            raise ValueError(f"projector: n_subsets={n_subsets} must divide n_views={n_views}")
        self.n = int(image_size)
        self.n_views = int(n_views)
        self.n_bins = int(n_bins or image_size)
        self.pixel_size_mm = float(pixel_size_mm)
        self.bin_size_mm = float(bin_size_mm or pixel_size_mm)
        self.n_subsets = int(n_subsets)
        self.device = torch.device(device) if device is not None else default_device()
        full = _joseph_matrix(self.n, self.n_views, self.n_bins, self.pixel_size_mm, self.bin_size_mm)
        self._forward: list[torch.Tensor] = []
        self._adjoint: list[torch.Tensor] = []
        for s in range(self.n_subsets):
            rows = (self.subset_views(s)[:, None] * self.n_bins + np.arange(self.n_bins)[None, :]).ravel()
            block = full[rows]
            self._forward.append(_to_torch_csr(block, self.device))
            self._adjoint.append(_to_torch_csr(block.T.tocsr(), self.device))

    @property
    def image_shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    @property
    def sinogram_shape(self) -> tuple[int, int]:
        return (self.n_views, self.n_bins)

    def subset_views(self, subset: int) -> np.ndarray:
        """View indices of one OSEM subset."""
        return np.arange(subset, self.n_views, self.n_subsets)

    def fov_mask(self) -> torch.Tensor:
        """Pixels inside the circle every view sees."""
        coords = torch.arange(self.n, device=self.device, dtype=torch.float32) - (self.n - 1) / 2.0
        radius = (self.n_bins - 1) / 2.0 * self.bin_size_mm / self.pixel_size_mm
        return (coords[:, None] ** 2 + coords[None, :] ** 2) <= radius**2

    def A(self, x: torch.Tensor, subset: int | None = None) -> torch.Tensor:
        """Forward projection: (nz, n, n) -> (nz, views, bins); a subset gives only its views."""
        nz = x.shape[0]
        if subset is None:  # view v = k * n_subsets + s lies in subset s at position k
            parts = [self.A(x, s) for s in range(self.n_subsets)]
            return torch.stack(parts, dim=2).reshape(nz, self.n_views, self.n_bins)
        cols = x.reshape(nz, self.n * self.n).T.contiguous()
        out = self._forward[subset] @ cols  # (views_s * bins, nz)
        return out.T.reshape(nz, -1, self.n_bins)

    def A_adjoint(self, y: torch.Tensor, subset: int | None = None) -> torch.Tensor:
        """Back projection, the exact adjoint of `A`: (nz, views[_s], bins) -> (nz, n, n)."""
        nz = y.shape[0]
        if subset is None:
            parts = y.reshape(nz, -1, self.n_subsets, self.n_bins)
            return sum(self.A_adjoint(parts[:, :, s], s) for s in range(self.n_subsets))
        cols = y.reshape(nz, -1).T.contiguous()
        out = self._adjoint[subset] @ cols  # (n*n, nz)
        return out.T.reshape(nz, self.n, self.n)


class GaussianBlur3d:
    """Separable Gaussian blur of a (nz, nx, ny) stack with a zero boundary: symmetric, hence self-adjoint.

    Args:
        fwhm_mm: (in-plane, axial) full width at half maximum in mm; 0 disables that direction.
        voxel_size_mm: (x, y, z) voxel size in mm.
    """

    def __init__(self, fwhm_mm: tuple[float, float], voxel_size_mm: tuple[float, float, float]) -> None:
        self.fwhm_mm = (float(fwhm_mm[0]), float(fwhm_mm[1]))
        vx, vy, vz = (float(v) for v in voxel_size_mm)
        sig = fwhm_to_sigma(self.fwhm_mm[0])
        self._kernels = {
            1: self._kernel(sig / vx),
            2: self._kernel(sig / vy),
            0: self._kernel(fwhm_to_sigma(self.fwhm_mm[1]) / vz),
        }

    @staticmethod
    def _kernel(sigma_vox: float) -> torch.Tensor | None:
        if sigma_vox <= 1e-3:
            return None
        radius = max(1, int(math.ceil(3.0 * sigma_vox)))
        t = torch.arange(-radius, radius + 1, dtype=torch.float64)
        k = torch.exp(-0.5 * (t / sigma_vox) ** 2)
        return (k / k.sum()).to(torch.float32)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.A(x)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for dim, kernel in self._kernels.items():
            if kernel is not None:
                out = _conv_along(out, kernel.to(x.device, x.dtype), dim)
        return out

    A_adjoint = A  # symmetric kernel + zero padding: the operator is its own adjoint


class SinogramBlur(GaussianBlur3d):
    """Separable Gaussian blur of a (nz, views, bins) sinogram along the bins and the slices, zero boundary
    (self-adjoint).

    Args:
        fwhm_mm: (radial, axial) full width at half maximum in mm.
        bin_size_mm: radial bin width.
        slice_mm: slice thickness.
    """

    def __init__(self, fwhm_mm: tuple[float, float], bin_size_mm: float, slice_mm: float) -> None:
        self.fwhm_mm = (float(fwhm_mm[0]), float(fwhm_mm[1]))
        self._kernels = {
            2: self._kernel(fwhm_to_sigma(self.fwhm_mm[0]) / float(bin_size_mm)),
            0: self._kernel(fwhm_to_sigma(self.fwhm_mm[1]) / float(slice_mm)),
        }


def _conv_along(x: torch.Tensor, kernel: torch.Tensor, dim: int) -> torch.Tensor:
    """1D convolution of a tensor along `dim` with zero padding ('same' size).

    Computed as a weighted sum of shifted copies: for the short Gaussian kernels used here this is much
    faster than conv1d on CPU and exactly symmetric, so the blur stays self-adjoint.
    """
    radius = kernel.numel() // 2
    length = x.shape[dim]
    pad = [0, 0] * (x.ndim - 1 - dim) + [radius, radius]
    padded = F.pad(x, pad)
    out = kernel[0] * padded.narrow(dim, 0, length)
    term = torch.empty_like(
        out
    )  # each product rounded, then added: the same bits as `out + k * shifted`, no allocations
    for k in range(1, kernel.numel()):
        torch.mul(padded.narrow(dim, k, length), kernel[k], out=term)
        out.add_(term)
    return out


class PETSystemModel:
    """y_bar = m * S(P(B x)) (+ background, handled by the caller), with m = sensitivity x attenuation factors.

    Args:
        projector: the line-integral projector P.
        multiplicative: per-bin factors m of shape (nz, views, bins).
        resolution: the image-space resolution model B (None: no blur).
        sinogram_resolution: the sinogram-space resolution model S (None: none).
    """

    def __init__(
        self,
        projector: ParallelBeamProjector,
        multiplicative: torch.Tensor,
        resolution: GaussianBlur3d | None,
        sinogram_resolution: SinogramBlur | None = None,
    ) -> None:
        self.projector = projector
        self.multiplicative = multiplicative
        self.resolution = resolution
        self.sinogram_resolution = sinogram_resolution
        self._subset_factors = [
            multiplicative[:, torch.as_tensor(projector.subset_views(s), device=multiplicative.device)]
            for s in range(projector.n_subsets)
        ]

    def factors(self, subset: int | None = None) -> torch.Tensor:
        return self.multiplicative if subset is None else self._subset_factors[subset]

    def A(self, x: torch.Tensor, subset: int | None = None) -> torch.Tensor:
        blurred = self.resolution.A(x) if self.resolution is not None else x
        line_integrals = self.projector.A(blurred, subset)
        if self.sinogram_resolution is not None:
            line_integrals = self.sinogram_resolution.A(line_integrals)
        return self.factors(subset) * line_integrals

    def A_adjoint(self, y: torch.Tensor, subset: int | None = None) -> torch.Tensor:
        weighted = self.factors(subset) * y
        if self.sinogram_resolution is not None:
            weighted = self.sinogram_resolution.A_adjoint(weighted)
        back = self.projector.A_adjoint(weighted, subset)
        return self.resolution.A_adjoint(back) if self.resolution is not None else back
