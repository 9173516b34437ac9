"""Warn when a study's noise level lies outside what the loaded weights were trained on.

A denoiser trained at one dose reduction smooths as if every input had that noise: given a study of higher dose (less
noise) it over-smooths and can make the image worse than the input (the shipped weights, trained at DRF 200, do at
DRF 20). The noise level is `metrics.noise.estimate_noise_level`, measured on the grid the network sees. The trained
range is the minimum and maximum of the estimate over the training subjects, recorded in `model_provenance.json`
(`trained_noise_level`) when a fold is released, and it is used only for the weights whose sha256 that file records.
A study is flagged when its estimate lies below 0.8 x the minimum or above 1.25 x the maximum.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..io import file_sha256, load_ras_volume, read_json
from ..metrics.noise import estimate_noise_level

__all__ = ["TOLERANCE", "NoiseLevelCheck", "provenance_of", "trained_noise_level", "trained_noise_range"]

logger = logging.getLogger(__name__)
TOLERANCE = (0.8, 1.25)


def trained_noise_level(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The estimate's range over training datalist items (their `image`), for the provenance file."""
    levels = [estimate_noise_level(load_ras_volume(item["image"])) for item in items]
    return {
        "min": round(float(np.min(levels)), 5),
        "max": round(float(np.max(levels)), 5),
        "subjects": [item["subject"] for item in items],
        "estimator": "bundle.metrics.noise.estimate_noise_level",
    }


def provenance_of(provenance_file: str | Path, ckpt_path: str | Path) -> dict[str, Any] | None:
    """The provenance record of the weights at `ckpt_path`, or None when the file does not describe these weights
    (its sha256 differs: a user's checkpoint) or either file is missing."""
    provenance, ckpt = Path(provenance_file), Path(ckpt_path)
    if not provenance.is_file() or not ckpt.is_file():
        return None
    record = read_json(provenance, "model provenance")
    return record if record.get("sha256") == file_sha256(ckpt) else None


def trained_noise_range(provenance_file: str | Path, ckpt_path: str | Path) -> tuple[float, float] | None:
    """(min, max) recorded for these weights, or None when the weights have no such record (a user's checkpoint)."""
    level = (provenance_of(provenance_file, ckpt_path) or {}).get("trained_noise_level")
    if not level:
        logger.info("no trained noise range recorded for %s: the noise-level check is off", ckpt_path)
        return None
    return float(level["min"]), float(level["max"])


class NoiseLevelCheck:
    """Called with a study's name and its preprocessed image; returns a one-line warning, or None."""

    def __init__(self, noise_range: tuple[float, float] | None, tolerance: tuple[float, float] = TOLERANCE) -> None:
        self.noise_range = None if noise_range is None else (float(noise_range[0]), float(noise_range[1]))
        self.tolerance = tolerance

    def __call__(self, name: str, image: Any) -> str | None:
        if self.noise_range is None:
            return None
        level = estimate_noise_level(np.asarray(image)[0])
        low, high = self.noise_range[0] * self.tolerance[0], self.noise_range[1] * self.tolerance[1]
        if low <= level <= high:
            return None
        hint = "less noisy: a lower dose reduction, likely over-smoothed" if level < low else "noisier than trained"
        return (
            f"study {name}: estimated noise level {level:.3f} is outside the range the model was trained on "
            f"({self.noise_range[0]:.3f}-{self.noise_range[1]:.3f}); {hint}"
        )
