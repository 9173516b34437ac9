"""Write a denoised volume as a DICOM PET series that mirrors its input series.

- Every tag of the input slice is kept (patient, study, frame of reference, geometry, units); nothing is
  added that identifies the patient.
- SeriesInstanceUID and every SOPInstanceUID are new; SeriesNumber is offset; ImageType says DERIVED.
- SeriesDescription is marked as denoised and DerivationDescription plus SourceImageSequence record what
  was done to which source image.
- Pixel data are signed 16-bit with a per-slice RescaleSlope (intercept 0), so stored values times the
  slope are the denoised activity in the input's units (e.g. Bq/mL).
- The series is written to a temporary folder and renamed when complete.
"""

from __future__ import annotations

import contextlib
import copy
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from .. import __version__
from ..errors import InputDataError, OutputExistsError
from .dicom_input import read_series_headers

__all__ = ["write_denoised_series", "DERIVATION"]

DERIVATION = f"Denoised by ultra_low_dose_pet_denoising {__version__} (2.5D residual U-Net, Xu et al. 2017)"
_INT16_MAX = 32767


def _slice_positions_lps(affine_ras: np.ndarray, depth: int) -> np.ndarray:
    """World position (LPS, as DICOM) of voxel (0, 0, k) for every slice k of a MONAI (RAS) affine."""
    idx = np.stack([np.zeros(depth), np.zeros(depth), np.arange(depth), np.ones(depth)])
    ras = (affine_ras @ idx)[:3].T
    return ras * np.array([-1.0, -1.0, 1.0])


def _match_slices(headers: list[pydicom.Dataset], positions: np.ndarray, folder: Path) -> list[pydicom.Dataset]:
    """The input header of every slice of the volume, matched by ImagePositionPatient."""
    ipp = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in headers])
    order = []
    for k, pos in enumerate(positions):
        dist = np.linalg.norm(ipp - pos, axis=1)
        j = int(np.argmin(dist))
        spacing = float(np.median(np.diff(np.sort(ipp[:, 2])))) if len(ipp) > 1 else 1.0
        if dist[j] > 0.25 * max(abs(spacing), 1e-3):
            raise InputDataError(f"{folder}: slice {k} of the prediction matches no input slice position")
        order.append(headers[j])
    return order


def _quantise(slice_values: np.ndarray) -> tuple[np.ndarray, float]:
    peak = float(np.max(np.abs(slice_values)))
    slope = peak / _INT16_MAX if peak > 0 else 1.0
    stored = np.clip(np.rint(slice_values / slope), -_INT16_MAX - 1, _INT16_MAX).astype(np.int16)
    return stored, slope


def write_denoised_series(
    study: dict[str, Any], prediction: Any, output_dir: str | os.PathLike, overwrite: bool = False
) -> Path:
    """Write `prediction` (1, X, Y, Z) MetaTensor in the input's space as `<output_dir>/<name>_denoised_dicom/`."""
    folder = Path(study["image"])
    target = Path(output_dir) / f"{study['name']}_denoised_dicom"
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target}: already exists; set overwrite to replace it")
    headers = read_series_headers(folder)
    volume = np.asarray(torch.as_tensor(prediction).detach().float().cpu())[0]  # (X=cols, Y=rows, Z)
    affine = np.asarray(torch.as_tensor(prediction.affine).cpu(), dtype=np.float64)
    sources = _match_slices(headers, _slice_positions_lps(affine, volume.shape[-1]), folder)
    if sources and (int(sources[0].Columns), int(sources[0].Rows)) != volume.shape[:2]:
        raise InputDataError(f"{folder}: prediction size {volume.shape[:2]} differs from the series' columns x rows")

    series_uid = generate_uid()
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    try:
        for k, src in enumerate(sources):
            ds = pydicom.dcmread(src.filename, stop_before_pixels=True)
            stored, slope = _quantise(volume[..., k].T)  # DICOM rows x columns
            sop_uid = generate_uid()
            ds.SOPInstanceUID = sop_uid
            ds.SeriesInstanceUID = series_uid
            ds.SeriesNumber = int(ds.get("SeriesNumber", 0) or 0) + 1000
            ds.SeriesDescription = (str(ds.get("SeriesDescription", "PET")) + " DENOISED")[:64]
            ds.ImageType = ["DERIVED", "SECONDARY"]
            ds.DerivationDescription = DERIVATION[:1024]
            source_ref = pydicom.Dataset()
            source_ref.ReferencedSOPClassUID = src.SOPClassUID
            source_ref.ReferencedSOPInstanceUID = src.SOPInstanceUID
            ds.SourceImageSequence = Sequence([source_ref])
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}"[:16], "0"
            for tag in ("SmallestImagePixelValue", "LargestImagePixelValue", "WindowCenter", "WindowWidth"):
                if tag in ds:
                    delattr(ds, tag)
            ds.PixelData = stored.tobytes()
            ds["PixelData"].VR = "OW"  # 16-bit pixels; the header was read without pixel data, so say it
            meta = FileMetaDataset(copy.deepcopy(ds.file_meta)) if hasattr(ds, "file_meta") else FileMetaDataset()
            meta.MediaStorageSOPClassUID = ds.SOPClassUID
            meta.MediaStorageSOPInstanceUID = sop_uid
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta = meta
            ds.save_as(tmp / f"slice_{k:04d}.dcm", enforce_file_format=True)
        if target.exists():
            old = target.parent / f".{target.name}.old-{secrets.token_hex(4)}"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return target
