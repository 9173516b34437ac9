"""A trained run's network as a study-in, volume-out denoiser, through the shipped inference path."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from monai.data import MetaTensor

from ..data import load_datalist
from ..errors import InputDataError
from ..io import read_json
from ..provenance import recorded_setting
from .dose_input import settings_drf_range
from .noise_check import provenance_of
from .study_denoiser import (
    INFERENCE_CONFIG,
    MR_GUIDED_VARIANT,
    inference_components,
    network_overrides,
    recorded_detail_drf,
)

__all__ = ["MR_KEYS", "TrainedDenoiser", "ras_array", "run_mr_keys", "run_settings"]

MR_KEYS = ("t1", "flair")  # the MR inputs configs/variants/mr_guided_inference.json reads


def run_settings(source: str | Path, weights: str = "best.pt") -> tuple[dict[str, Any], Path]:
    """(training settings, weights file) of `source`: a training run's `checkpoints/` folder (its `manifest.json`
    and `weights`), or a released weights file such as `models/model.pt` with its `<stem>_provenance.json` beside it
    recording this file's sha256 (its `training_settings`)."""
    path = Path(source)
    if path.is_dir():
        manifest = path / "manifest.json"
        if not manifest.is_file():
            raise InputDataError(f"{path}: no manifest.json; expected a training run's checkpoints folder")
        return read_json(manifest, "checkpoint manifest").get("settings", {}), path / weights
    if not path.is_file():
        raise InputDataError(f"{path}: no such checkpoints folder or weights file")
    provenance = path.with_name(f"{path.stem}_provenance.json")
    record = provenance_of(provenance, path)
    if record is None or "training_settings" not in record:
        raise InputDataError(
            f"{path}: {provenance} is missing or records no training settings for this file's sha256; pass a "
            "training run's checkpoints folder instead"
        )
    return record["training_settings"], path


def _training_spacing(settings: dict[str, Any]) -> list[float]:
    """The voxel size (mm) of the run's training data: its datalist's first image, else the default 2 mm grid."""
    import nibabel as nib

    datalist = Path(str(recorded_setting(settings, "datalist_file", "")))
    try:
        first = load_datalist(datalist)[0]["image"]
        return [float(v) for v in nib.load(str(first)).header.get_zooms()[:3]]
    except (InputDataError, OSError, IndexError):
        return [2.0, 2.0, 2.0]


def run_mr_keys(settings: Mapping[str, Any]) -> list[str]:
    """The MR inputs (`t1`, `flair`) a training run's network reads, from its recorded `extra_keys` (the dose code
    left out); empty for a PET-only run."""
    return [k for k in recorded_setting(settings, "extra_keys", []) if k != "dose"]


class TrainedDenoiser:
    """A trained network run through the shipped inference path (`configs/inference.json`'s preprocessing, inferer
    and postprocessing: resampling to the training grid, percentile scaling, dose-code channel, the correction added
    to the untouched input on the study's own grid), so that what is evaluated is what users get.

    Built from a training run's `checkpoints/` (its `manifest.json` settings and `best.pt` weights) or a released
    weights file with its provenance (`run_settings`). Called with a study's NIfTI path and its DRF (a number or
    'auto'), it returns the denoised volume in RAS voxel order (as `io.load_ras_volume` reads the input);
    `denoise` returns it on the study's grid as a MetaTensor.
    """

    def __init__(
        self,
        checkpoints: str | Path,
        weights: str = "best.pt",
        precision: str = "auto",
        overrides: dict[str, Any] | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        settings, weights_file = run_settings(checkpoints, weights)
        self.mr_keys = run_mr_keys(settings)
        unknown = [k for k in self.mr_keys if k not in MR_KEYS]
        if unknown:
            raise InputDataError(f"{checkpoints}: a network with extra inputs {unknown} has no inference path here")
        self.dose_conditioned = bool(recorded_setting(settings, "dose_conditioning", False))
        self.image_coded = self.dose_conditioned and recorded_setting(settings, "dose_code_source") == "image"
        config = {
            "ckpt_path": str(weights_file),
            "provenance_file": str(weights_file.with_name(f"{weights_file.stem}_provenance.json")),
            "dose_conditioning": self.dose_conditioned,
            "precision": precision,
            "backend": "torch",
            "training_spacing": _training_spacing(settings),
            "device": str(device),
            **network_overrides(settings),
            **({"mr_keys": self.mr_keys} if self.mr_keys else {}),
        }
        if self.image_coded:  # trained on the code its noise estimator reads: inference reads it the same way
            config["noise_estimator"] = image_code_estimator(settings, checkpoints)
            low, high = settings_drf_range(settings)
            config["trained_drf_range"] = [low, float(recorded_setting(settings, "image_code_cap", high))]  # its cap
        config.update(overrides or {})
        files = (INFERENCE_CONFIG, MR_GUIDED_VARIANT) if self.mr_keys else (INFERENCE_CONFIG,)
        self.preprocessing, self.denoiser = inference_components(config, files)
        self.settings = settings
        self.weights_file = weights_file
        self.detail_drf: float | None = (  # how much sub-grid detail a study off the 2 mm grid keeps (None: all)
            config["detail_drf"]
            if "detail_drf" in config
            else recorded_detail_drf(config["provenance_file"], config["ckpt_path"])
        )

    @property
    def reads_drf_from_image(self) -> bool:
        """Whether a study given no DRF is coded from its image (a calibrated noise estimator is configured)."""
        dose_input = self.denoiser.dose_input
        return dose_input is not None and dose_input.calibrated

    def denoise(
        self, study: str | Path, drf: float | str | None, companions: Mapping[str, Any] | None = None
    ) -> MetaTensor:
        """The denoised (1, X, Y, Z) study on its own grid, voxel order and units, with the input's metadata; `drf`
        None reads the code from the image where a noise estimator is configured; `companions` (a datalist item)
        gives an MR-guided network the study's MR files (its `mr_keys`)."""
        if self.dose_conditioned and drf is None and not self.reads_drf_from_image:
            raise InputDataError(f"{study}: a dose-conditioned network needs the study's DRF")
        companions = companions or {}
        mr = {key: str(companions[key]) for key in self.mr_keys if companions.get(key)}
        item = self.preprocessing({"image": str(study), "name": Path(study).name, **mr})
        return self.denoiser(Path(study).name, item, drf if self.dose_conditioned else None)

    def __call__(
        self, study: str | Path, drf: float | str | None, companions: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        return ras_array(self.denoise(study, drf, companions))


def image_code_estimator(settings: dict[str, Any], source: str | Path) -> Any:
    """The noise estimator an image-coded run was trained with (its recorded `noise_estimator_record`), refused in
    one line when the record's file is gone or is not the one the run recorded (sha256)."""
    from ..io import file_sha256
    from ..noise_estimation import NoiseEstimator

    record = Path(str(recorded_setting(settings, "noise_estimator_record", "")))
    if not record.is_file():
        raise InputDataError(f"{source}: the run was trained on codes read by {record}, which is not there")
    if file_sha256(record) != recorded_setting(settings, "noise_estimator_sha256"):
        raise InputDataError(f"{source}: {record} is not the noise estimator record the run was trained with")
    return NoiseEstimator.load(record)


def ras_array(image: MetaTensor) -> np.ndarray:
    """The (X, Y, Z) voxels of a (1, X, Y, Z) MetaTensor in RAS order, as `io.load_ras_volume` orders a file's."""
    import nibabel as nib

    array = torch.as_tensor(image)[0].float().cpu().numpy()
    affine = np.asarray(torch.as_tensor(image.affine), dtype=float)
    return np.ascontiguousarray(nib.as_closest_canonical(nib.Nifti1Image(array, affine)).get_fdata(dtype=np.float32))
