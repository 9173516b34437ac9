"""Header checks that refuse a geometry no PET scanner produces, before any reader silently "repairs" it.

- Spatial units other than millimetres (metres, microns) in a NIfTI header: the voxel sizes would be read as mm.
- A singular voxel-to-world affine (sform or qform): readers replace it by the identity, so the study comes back
  as a blur at 1 mm.
- Voxel sizes outside `VOXEL_RANGE_MM` (0.3-20 mm): no PET or PET/MR system reconstructs outside it, and such a
  size means wrong header units or a wrong file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputDataError

__all__ = ["VOXEL_RANGE_MM", "check_nifti_geometry", "check_voxel_size"]

VOXEL_RANGE_MM = (0.3, 20.0)


def check_voxel_size(voxel_mm: tuple[float, ...] | np.ndarray, name: str) -> None:
    """Refuse voxel sizes outside `VOXEL_RANGE_MM`, naming the file."""
    sizes = [float(v) for v in voxel_mm]
    low, high = VOXEL_RANGE_MM
    if not all(low <= v <= high for v in sizes):
        shown = " x ".join(f"{v:.3g}" for v in sizes)
        raise InputDataError(
            f"{name}: voxel size {shown} mm is implausible for PET (expected {low:g}-{high:g} mm); wrong header units?"
        )


def check_nifti_geometry(path: str | Path) -> None:
    """Refuse a NIfTI file whose header has non-mm spatial units, a singular affine or implausible voxel sizes."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
    except Exception:  # noqa: BLE001 - unreadable files are reported by the loader with its own message
        return
    header = img.header
    if not hasattr(header, "get_xyzt_units"):
        return
    units = header.get_xyzt_units()[0]
    if units in ("meter", "micron"):
        raise InputDataError(
            f"{path}: the header's spatial unit is '{units}'; PET voxel sizes are expected in mm (fix xyzt_units)"
        )
    for kind, (matrix, code) in (("sform", header.get_sform(coded=True)), ("qform", header.get_qform(coded=True))):
        if matrix is not None and code and abs(float(np.linalg.det(np.asarray(matrix)[:3, :3]))) < 1e-9:
            raise InputDataError(f"{path}: its {kind} affine is singular, so the voxel geometry is undefined")
    zooms = np.linalg.norm(np.asarray(img.affine)[:3, :3], axis=0)
    if not np.all(zooms > 0):
        raise InputDataError(f"{path}: its affine is singular, so the voxel geometry is undefined")
    check_voxel_size(zooms, str(path))
