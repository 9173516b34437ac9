"""A trained noise estimator applied to a whole volume, and the dose code it gives a dose-conditioned model.

`volume_noise_log2` runs `networks.NoiseLevelNet` over every axial slice of a volume on the network's grid and
aggregates its local noise maps over the volume's brain region: log2 of the RMS relative noise, the quantity
`metrics.relative_noise` measures from a low-/full-dose pair. `NoiseEstimator` holds the weights and their record
(`models/noise_estimator.json`): the network's settings, the sha256 of its weights and the calibration that maps a
noise level to the DRF at which the dose-conditioned model's training cohort had that noise on average
(log2 noise = intercept + slope x log2 DRF): the *equivalent DRF*, the code the model reads. Inference inverts the
calibration of the estimator's own readings on that cohort (`code_calibration`), so a systematic compression of
its range does not become a biased code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputDataError
from ..io import file_sha256, read_json
from ..metrics.relative_noise import brain_mean, noise_mask
from ..networks.noise_estimator import NoiseLevelNet
from .samples import stack_slices

__all__ = ["NoiseEstimator", "equivalent_drf", "volume_noise_log2"]


def volume_noise_log2(network: NoiseLevelNet, image: Any, batch_slices: int = 16) -> float:
    """log2 RMS relative noise of an (X, Y, Z) low-dose volume, read from the image alone."""
    volume = np.squeeze(np.asarray(image, dtype=np.float32))
    mask = noise_mask(volume)
    normalized = volume / brain_mean(volume, mask)
    slices = [z for z in range(volume.shape[2]) if mask[:, :, z].any()]
    total, count = 0.0, 0
    network.eval()
    with torch.no_grad():
        for start in range(0, len(slices), batch_slices):
            chunk = slices[start : start + batch_slices]
            stacks = np.stack(
                [
                    np.concatenate([stack_slices(normalized, z, network.in_slices), mask[None, :, :, z]], axis=0)
                    for z in chunk
                ]
            ).astype(np.float32)
            variance = torch.exp2(network.noise_map(torch.from_numpy(stacks)).clamp(-40.0, 10.0))[:, 0].numpy()
            region = np.moveaxis(mask[:, :, chunk], 2, 0)
            total += float(variance[region].sum())
            count += int(region.sum())
    return 0.5 * float(np.log2(total / count))


def equivalent_drf(noise_log2: float, calibration: dict[str, Any]) -> float:
    """The DRF at which the calibration cohort's noise was `noise_log2` on average (not clipped)."""
    return float(2.0 ** ((noise_log2 - calibration["intercept"]) / calibration["slope"]))


class NoiseEstimator:
    """The shipped noise estimator: weights file plus its record (settings, sha256, dose calibration)."""

    def __init__(self, weights: str | Path, record: dict[str, Any]) -> None:
        self.weights, self.record = Path(weights), record
        if not self.weights.is_file():
            raise InputDataError(f"{self.weights}: noise estimator weights not found")
        if record.get("sha256") != file_sha256(self.weights):
            raise InputDataError(f"{self.weights}: its sha256 is not the one its record names; refit or restore it")
        self.network = NoiseLevelNet(int(record["in_slices"]), int(record["features"]))
        self.network.load_state_dict(torch.load(self.weights, map_location="cpu", weights_only=True))
        self.network.eval()

    @classmethod
    def load(cls, record_file: str | Path) -> "NoiseEstimator":
        """From `<name>.json` (its `weights` file named relative to it)."""
        record_path = Path(record_file)
        record = read_json(record_path, "noise estimator record")
        return cls(record_path.parent / record["weights"], record)

    @property
    def calibration(self) -> dict[str, Any]:
        """Measured noise -> DRF on the training cohort (what a perfect estimator's reading means)."""
        return self.record["calibration"]

    @property
    def code_calibration(self) -> dict[str, Any]:
        """This estimator's reading -> DRF on the training cohort (what inference inverts); the measured-noise
        calibration for records without one."""
        return self.record.get("code_calibration") or self.record["calibration"]

    def noise_log2(self, image: Any) -> float:
        """log2 RMS relative noise of an (X, Y, Z) volume on the network's grid."""
        return volume_noise_log2(self.network, image)

    def drf(self, image: Any) -> tuple[float, float]:
        """(equivalent DRF, log2 noise) of an (X, Y, Z) volume."""
        level = self.noise_log2(image)
        return equivalent_drf(level, self.code_calibration), level

    def code_drf(self, image: Any) -> tuple[float, float]:
        """(DRF, log2 noise) of an (X, Y, Z) volume as inference codes it: the equivalent DRF lowered by the record's
        `safety_margin_log2`, at least 1 (full dose)."""
        drf, level = self.drf(image)
        return max(drf * 2.0 ** -float(self.record.get("safety_margin_log2", 0.0)), 1.0), level
