"""Fit how much of a study's sub-grid detail inference keeps (`transforms.native_grid`): the `detail_drf` of the
Wiener gain w = 1 / (1 + DRF / detail_drf), chosen on a native-grid tuning cohort (never a test set) to maximise the
mean PSNR in the brain over its subjects and dose levels."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..data import at_dose, load_datalist
from ..deploy.trained_denoiser import TrainedDenoiser
from ..io import load_ras_volume
from ..metrics import masked_psnr
from ..quantification.references import SubjectReferences
from ..transforms.native_grid import detail_weight

__all__ = ["DETAIL_DRF_GRID", "WEIGHT_GRID", "fit_command", "fit_detail_drf"]

DETAIL_DRF_GRID = tuple(float(v) for v in np.geomspace(2.0, 2000.0, 61))
WEIGHT_GRID = tuple(float(w) for w in np.linspace(0.0, 1.0, 21))


def _psnrs(references: SubjectReferences, resampled: np.ndarray, kept: np.ndarray, weights: Sequence[float]):
    """PSNR in the brain (the evaluation's definition) of each blend."""
    return [masked_psnr(resampled + w * (kept - resampled), references.full, references.mask) for w in weights]


def fit_detail_drf(
    weights_source: str, datalist: str, drfs: Sequence[float], subjects: int | None = None
) -> dict[str, Any]:
    """The `detail_drf` maximising the mean PSNR of the blended output over the cohort's subjects and `drfs`, with
    the per-DRF best fixed weight and the PSNR of w = 0, w = 1 and the fitted gain beside it."""
    kept_all = TrainedDenoiser(weights_source, overrides={"detail_drf": None, "detail_reading": None})
    resampled_all = TrainedDenoiser(weights_source, overrides={"native_grid_correction": False})
    items = load_datalist(datalist)[:subjects]
    by_drf: dict[float, list[np.ndarray]] = {float(d): [] for d in drfs}  # per DRF: rows of PSNR over WEIGHT_GRID
    fitted_rows: list[tuple[float, np.ndarray]] = []  # (drf, PSNR over DETAIL_DRF_GRID)
    for item in items:
        references = SubjectReferences(item)
        for drf in drfs:
            path = at_dose([item], float(drf))[0]["image"]
            low = load_ras_volume(path)
            code = None if kept_all.image_coded else float(drf)  # an image-coded run reads its code, as in use
            resampled, kept = resampled_all(path, code), kept_all(path, code)
            base = masked_psnr(low, references.full, references.mask)
            by_drf[float(drf)].append(np.array(_psnrs(references, resampled, kept, WEIGHT_GRID)) - base)
            gains = [detail_weight(drf, d0) for d0 in DETAIL_DRF_GRID]
            fitted_rows.append((float(drf), np.array(_psnrs(references, resampled, kept, gains)) - base))
    mean_over_all = np.mean([row for _, row in fitted_rows], axis=0)
    best = int(np.argmax(mean_over_all))
    detail_drf = DETAIL_DRF_GRID[best]
    per_drf = {}
    for drf, rows in by_drf.items():
        mean = np.mean(rows, axis=0)
        fitted = np.mean([row[best] for d, row in fitted_rows if d == drf])
        per_drf[f"{drf:g}"] = {
            "best_weight": WEIGHT_GRID[int(np.argmax(mean))],
            "fitted_weight": round(detail_weight(drf, detail_drf), 3),
            "gain_db_weight_0": round(float(mean[0]), 3),
            "gain_db_weight_1": round(float(mean[-1]), 3),
            "gain_db_best_weight": round(float(mean.max()), 3),
            "gain_db_fitted": round(float(fitted), 3),
        }
    return {
        "detail_drf": round(detail_drf, 2),
        "model": "w = 1 / (1 + DRF / detail_drf)",
        "cohort": datalist,
        "subjects": [item["subject"] for item in items],
        "per_drf": per_drf,
        "gain_db_vs_input": "mean PSNR in the brain minus the input's, over the subjects",
        "dose_code": "read from each image" if kept_all.image_coded else "the study's DRF",
        "command": fit_command(weights_source, datalist, drfs, subjects),
    }


def fit_command(weights_source: str, datalist: str, drfs: Sequence[float], subjects: int | None = None) -> str:
    """The command line that makes and records this fit again."""
    import shlex

    command = ["python", "scripts/fit_detail_gain.py", "--weights", str(weights_source), "--datalist", str(datalist)]
    command += [] if subjects is None else ["--subjects", str(subjects)]
    return shlex.join([*command, "--record", "--drf", *(f"{float(d):g}" for d in drfs)])
