"""Checks of a DICOM series folder before it is read: one PET series, readable files, one evenly spaced stack of
slices."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Hashable, Mapping

import numpy as np
import pydicom
from monai.config import KeysCollection
from monai.transforms import MapTransform
from pydicom.errors import InvalidDicomError

from ..errors import InputDataError

__all__ = ["read_series_headers", "check_slice_positions", "CheckDicomSeriesd"]


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
    check_slice_positions(headers, root)
    return headers


def check_slice_positions(headers: list[pydicom.Dataset], folder: Path) -> None:
    """Refuse a series whose slices are not one evenly spaced stack: a duplicated slice position, a missing slice
    or uneven spacing would give the volume a wrong axial geometry."""
    if len(headers) < 2 or not all("ImagePositionPatient" in ds for ds in headers):
        return
    orientation = headers[0].get("ImageOrientationPatient")
    if orientation is None or len(orientation) != 6:
        return
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    normal = np.cross(row, col)
    positions = np.sort([float(np.dot(normal, np.asarray(ds.ImagePositionPatient, float))) for ds in headers])
    steps = np.diff(positions)
    spacing = float(np.median(steps))
    if np.any(steps < max(1e-3 * abs(spacing), 1e-4)):
        at = positions[int(np.argmin(steps))]
        raise InputDataError(f"{folder}: two slices share the position {at:.2f} mm (a duplicated slice)")
    if np.any(steps > 1.5 * spacing):
        k = int(np.argmax(steps))
        raise InputDataError(
            f"{folder}: slice(s) missing between {positions[k]:.2f} and {positions[k + 1]:.2f} mm "
            f"(spacing {spacing:.3g} mm elsewhere)"
        )
    if float(steps.max() - steps.min()) > 0.01 * spacing:
        raise InputDataError(
            f"{folder}: uneven slice spacing ({steps.min():.3g} to {steps.max():.3g} mm); one evenly spaced stack is "
            "needed"
        )


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
