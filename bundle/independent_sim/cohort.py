"""Write an independent-simulator cohort: NIfTI volumes and a datalist the bundle's evaluation reads."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..io import save_nifti, write_json
from .phantom import make_independent_subject
from .scanner import ScannerSettings, acquire_and_reconstruct

__all__ = ["DRFS", "simulate_independent_cohort"]

DRFS = (2.0, 4.0, 10.0, 20.0, 50.0, 100.0, 200.0)


def _affine(voxel: Sequence[float], shape: Sequence[int]) -> np.ndarray:
    affine = np.diag([*voxel, 1.0])
    affine[:3, 3] = -np.asarray(voxel) * (np.asarray(shape) - 1) / 2.0
    return affine


def simulate_independent_cohort(
    output_dir: str | Path, subjects: int = 6, seed: int = 7000, drfs: Sequence[float] = DRFS, progress: bool = True
) -> Path:
    """Simulate `subjects` subjects (subject k from the stream (seed, k)); complete subjects are kept. Returns the
    datalist's path."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    items, kinds, described = [], {}, {}
    for k in range(subjects):
        sid = f"sub-{k + 1:03d}"
        folder = out / sid
        record = folder / "subject.json"
        start = time.perf_counter()
        if record.is_file():
            info = json.loads(record.read_text())
        else:
            rng = np.random.default_rng([seed, k])
            subject = make_independent_subject(rng)
            volumes = acquire_and_reconstruct(subject.activity, subject.mu, subject.voxel_mm, tuple(drfs), rng)
            affine = _affine(subject.voxel_mm, subject.activity.shape)
            files = {"pet_full": volumes["full"], **{f"pet_drf{d:g}": volumes[f"drf{d:g}"] for d in drfs}}
            files.update({"truth": subject.activity, "brain_mask": subject.brain.astype(np.uint8)})
            files["lesion_mask"] = subject.lesions.astype(np.uint8)
            for name, array in files.items():
                save_nifti(array, affine, folder / f"{sid}_{name}.nii.gz", overwrite=True)
            info = {"kinds": subject.kinds, "description": subject.description, "settings": vars(ScannerSettings())}
            write_json(info, record, overwrite=True)  # written last: the subject is complete
        if progress:
            print(f"{sid}: {time.perf_counter() - start:.0f} s {info['description']['voxel_mm']}", flush=True)
        kinds[sid], described[sid] = info["kinds"], info["description"]
        items.append(
            {
                "subject": sid,
                "image": f"{sid}/{sid}_pet_drf{max(drfs):g}.nii.gz",
                **{f"image_drf{d:g}": f"{sid}/{sid}_pet_drf{d:g}.nii.gz" for d in drfs},
                "label": f"{sid}/{sid}_pet_full.nii.gz",
                "mask": f"{sid}/{sid}_brain_mask.nii.gz",
                "lesion": f"{sid}/{sid}_lesion_mask.nii.gz",
                "truth": f"{sid}/{sid}_truth.nii.gz",
            }
        )
    datalist = {
        "name": "independent-simulator test cohort",
        "description": "low-/full-dose pairs from bundle/independent_sim (another projector, PSF, reconstruction, "
        "count scale and lesion recipe); for testing only, never for training or tuning",
        "units": "kBq/mL",
        "drf": float(max(drfs)),
        "numTraining": len(items),
        "training": items,
        "lesion_kinds": kinds,
        "subjects": described,
    }
    return write_json(datalist, out / "datalist.json", overwrite=True)
