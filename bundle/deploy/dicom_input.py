"""Checks of a DICOM series folder before it is read: one PET series, readable files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Hashable, Mapping

import pydicom
from monai.config import KeysCollection
from monai.transforms import MapTransform
from pydicom.errors import InvalidDicomError

from ..errors import InputDataError

__all__ = ["read_series_headers", "CheckDicomSeriesd"]


def read_series_headers(folder: str | Path, modality: str | None = "PT") -> list[pydicom.Dataset]:
    """Headers of every file in a DICOM folder, refusing corrupt files, mixed series and other modalities."""
    root = Path(folder)
    files = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputDataError(f"{root}: the DICOM folder is empty")
    headers = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
            raise InputDataError(f"{f}: not a readable DICOM file ({type(exc).__name__})") from exc
        if "SeriesInstanceUID" not in ds:
            raise InputDataError(f"{f}: DICOM file without a SeriesInstanceUID")
        headers.append(ds)
    series = sorted({str(ds.SeriesInstanceUID) for ds in headers})
    if len(series) > 1:
        raise InputDataError(f"{root}: holds {len(series)} DICOM series; put one series per folder")
    modalities = sorted({str(ds.get("Modality", "?")) for ds in headers})
    if modality is not None and modalities != [modality]:
        raise InputDataError(f"{root}: modality {'/'.join(modalities)}, expected {modality} (PET)")
    for f, ds in zip(files, headers):
        ds.filename = str(f)
    return headers


class CheckDicomSeriesd(MapTransform):
    """For keys that point to a folder (a DICOM series), check it before loading; files pass through."""

    def __init__(self, keys: KeysCollection, modality: str | None = "PT", allow_missing_keys: bool = True) -> None:
        super().__init__(keys, allow_missing_keys)
        self.modality = modality

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            value = d[key]
            if isinstance(value, (str, Path)) and Path(value).is_dir():
                read_series_headers(value, self.modality)
            elif isinstance(value, (str, Path)) and not Path(value).exists():
                raise InputDataError(f"{value}: file not found")
        return d
