"""What made a study's outputs: recorded with them, compared on every rerun.

A rerun may skip a study only when its outputs were made from the same input by the same model with the same
settings. `run_identity` is the run's part (model file sha256, backend, precision as run, dose setting, output
mode, the noise estimator's weights when it chooses the dose code), `study_identity` adds the input's sha256 (a NIfTI file's, or every file of a DICOM series folder), and
`identity_differences` names what differs between a record and this run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from ..io import file_sha256
from ..transforms.hot_uptake import hot_uptake_setting
from ..transforms.native_grid import local_gain_setting, reading_line

__all__ = ["identity_differences", "run_identity", "study_identity"]


def _precision_as_run(backend: str, precision: str, device: torch.device | str) -> str:
    from ..inferers import resolve_precision

    if backend != "torch":
        return "fp32"
    dtype = resolve_precision(precision, device)
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def run_identity(
    backend: str,
    model_files: Mapping[str, str],
    precision: str = "auto",
    device: torch.device | str = "cpu",
    drf: Any = None,
    native_grid_correction: bool = True,
    reference_protocol: Mapping[str, Any] | None = None,
    noise_estimator_sha256: str | None = None,
    detail_reading: Mapping[str, Any] | None = None,
    detail_local_gain: Mapping[str, Any] | None = None,
    hot_uptake_restore: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The settings of this run that determine every study's output; `model_files` maps each backend to its file;
    `noise_estimator_sha256` names the noise estimator's weights when it may choose a study's dose code;
    `detail_reading` the line of a sub-grid gain read from each study (absent from the records of earlier runs,
    which used the DRF rule, so they still match when it is None); `detail_local_gain` the band's local gain setting
    (likewise absent from earlier records); `hot_uptake_restore` the hot-focus restore setting (likewise)."""
    model = Path(str(model_files.get(backend, "")))
    return {
        "model_sha256": file_sha256(model) if model.is_file() else None,
        "backend": backend,
        "precision": _precision_as_run(backend, precision, device),
        "drf": drf if drf is None or isinstance(drf, str) else float(drf),
        "native_grid_correction": bool(native_grid_correction),
        "reference_protocol": None if reference_protocol is None else dict(reference_protocol),
        "noise_estimator_sha256": noise_estimator_sha256,
        "detail_reading": reading_line(detail_reading),
        "detail_local_gain": local_gain_setting(detail_local_gain),
        "hot_uptake_restore": hot_uptake_setting(hot_uptake_restore),
    }


def study_identity(study: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, Any]:
    """`run` plus the sha256 of the study's input (file, or DICOM series folder) and, for a study with a BIDS sidecar
    (whose dose facts may set its DRF), of the sidecar."""
    from .study_outputs import tree_sha256

    identity = dict(run, input_sha256=tree_sha256(Path(str(study["image"]))))
    if study.get("sidecar"):
        identity["sidecar_sha256"] = tree_sha256(Path(str(study["sidecar"])))
    return identity


def identity_differences(recorded: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """The names of the settings that differ, each with the recorded and the current value ('input' for the input
    file); every one when nothing was recorded (outputs of a bundle before 0.2.1)."""
    if not recorded:
        return ["(the record does not say what made the outputs)"]
    out = []
    for key, value in current.items():
        before = recorded.get(key)
        if before == value:
            continue
        if key == "input_sha256":
            out.append("input (the file changed since)")
        elif key == "sidecar_sha256":
            out.append("sidecar (the study's BIDS sidecar changed since)")
        elif key == "model_sha256":
            out.append("model (other weights)")
        else:
            out.append(f"{key} ({before!r} then, {value!r} now)")
    return out
