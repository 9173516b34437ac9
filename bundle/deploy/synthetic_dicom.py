"""Write a synthetic PET DICOM series with pydicom from a volume (for tests, examples and benchmarks).

The volume is indexed (column, row, slice) like MONAI's ITK reader returns a series: slice k lies at
origin + k * spacing_z along the patient's head direction, rows run posterior, columns run to the left (LPS).
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

__all__ = ["write_pet_series", "PET_IMAGE_STORAGE"]

PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"


def write_pet_series(
    volume: np.ndarray,
    folder: str | Path,
    spacing_mm: tuple[float, float, float] = (2.0, 2.0, 2.0),
    origin_lps: tuple[float, float, float] = (-127.0, -127.0, -80.0),
    modality: str = "PT",
    patient_name: str = "Synthetic^Patient",
    patient_id: str = "SYN0001",
    series_description: str = "Brain FDG low dose",
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> Path:
    """Write `volume` (X columns, Y rows, Z slices; activity in Bq/mL) as one DICOM file per slice."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_uid = generate_uid()
    dx, dy, dz = spacing_mm
    today = datetime.date(2026, 1, 1).strftime("%Y%m%d")
    for k in range(volume.shape[2]):
        plane = np.asarray(volume[:, :, k], dtype=np.float64).T  # rows x columns
        peak = float(np.abs(plane).max())
        slope = peak / 32767 if peak > 0 else 1.0
        stored = np.rint(plane / slope).astype(np.int16)
        ds = pydicom.Dataset()
        ds.SOPClassUID = PET_IMAGE_STORAGE
        ds.SOPInstanceUID = generate_uid()
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = patient_name, patient_id, "19700101", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.StudyDate = ds.SeriesDate = today
        ds.StudyID, ds.AccessionNumber = "1", "ACC0001"
        ds.Modality = modality
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.SeriesDescription = series_description
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.ImagePositionPatient = [f"{v:.4f}" for v in (origin_lps[0], origin_lps[1], origin_lps[2] + k * dz)]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.PixelSpacing = [f"{dy:g}", f"{dx:g}"]
        ds.SliceThickness = f"{dz:g}"
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}"[:16], "0"
        ds.Units = "BQML"
        ds.PixelData = stored.tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = PET_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.save_as(out / f"IM{k:04d}.dcm", enforce_file_format=True)
    return out
