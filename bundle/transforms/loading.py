"""Image loading that names the file when it cannot be read (MONAI's LoadImaged with a clear error)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Hashable, Mapping

from monai.transforms import LoadImaged

from ..errors import InputDataError

__all__ = ["LoadPETd"]


class LoadPETd(LoadImaged):
    """`LoadImaged` (NIfTI with nibabel, DICOM series and other formats with ITK); a file that cannot be
    read raises a one-line InputDataError naming it instead of the readers' combined report."""

    def __call__(self, data: Mapping[Hashable, Any], reader: Any = None) -> dict[Hashable, Any]:
        for key in self.key_iterator(dict(data)):
            path = data[key]
            if isinstance(path, (str, Path)) and not Path(path).exists():
                raise InputDataError(f"{path}: file not found")
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
