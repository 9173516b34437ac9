"""Image loading that names the file when it cannot be read (MONAI's LoadImaged with a clear error)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Hashable, Mapping

from monai.transforms import LoadImaged

from ..errors import InputDataError
from .geometry import check_nifti_geometry

__all__ = ["LoadPETd"]


class LoadPETd(LoadImaged):
    """`LoadImaged` (NIfTI with nibabel, DICOM series and other formats with ITK); a file that cannot be
    read raises a one-line InputDataError naming it instead of the readers' combined report, and a NIfTI header
    with non-mm units, a singular affine or implausible voxel sizes is refused before the reader "repairs" it."""

    def __call__(self, data: Mapping[Hashable, Any], reader: Any = None) -> dict[Hashable, Any]:
        for key in self.key_iterator(dict(data)):
            path = data[key]
            if isinstance(path, (str, Path)) and not Path(path).exists():
                raise InputDataError(f"{path}: file not found")
            if isinstance(path, (str, Path)) and Path(path).is_file() and not os.access(path, os.R_OK):
                raise InputDataError(f"{path}: cannot be read (permission denied)")
            if isinstance(path, (str, Path)) and str(path).lower().endswith((".nii", ".nii.gz")):
                check_nifti_geometry(path)
        try:
            return super().__call__(data, reader)
        except InputDataError:
            raise
        except Exception as exc:  # noqa: BLE001 - any reader failure means the file is unusable
            names = [str(data[k]) for k in self.key_iterator(dict(data)) if isinstance(data[k], (str, Path))]
            cause = exc.__cause__ or exc
            raise InputDataError(
                f"{' / '.join(names)}: cannot be read as an image ({type(cause).__name__}; truncated, corrupt or not an image?)"
            ) from exc
