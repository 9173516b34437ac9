"""The dose code a model is given at inference, read from its training images: a model trained on it conditions on
what the image shows (the noise estimator's reading), not on a DRF label that another protocol's counts change.

`ImageCodeDrfd` stores, for each volume key, `<key>_code_drf`: the DRF that inference would read from that image
(`NoiseEstimator.code_drf`, capped at the top of the trained range as inference caps it). It is deterministic, so a
`CacheDataset` computes it once per volume. `transforms.RandDoseLeveld` then gives the drawn level's code DRF to the
dose-code channel instead of its label, and keeps the label as `labelled_drf`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Hashable, Mapping, Sequence

import torch
from monai.transforms import MapTransform

from ..errors import ConfigValueError
from ..transforms.dose import CODE_DRF_SUFFIX
from .estimator import NoiseEstimator

__all__ = ["CODE_DRF_SUFFIX", "ImageCodeDrfd"]


class ImageCodeDrfd(MapTransform):
    """Add `<key>_code_drf` for each (1, X, Y, Z) volume of `keys`: the DRF the noise estimator of `record` reads from
    it, at most `top`."""

    def __init__(self, keys: Sequence[str], record: str | Path, top: float, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if not Path(record).is_file():
            raise ConfigValueError(
                f"setting noise_estimator_record: {record} not found (fit one: python scripts/fit_noise_estimator.py)"
            )
        self.record, self.top = Path(record), float(top)
        self._estimator: NoiseEstimator | None = None

    @property
    def estimator(self) -> NoiseEstimator:
        if self._estimator is None:
            self._estimator = NoiseEstimator.load(self.record)
        return self._estimator

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            volume = torch.as_tensor(d[key])[0].float().cpu().numpy()
            d[f"{key}{CODE_DRF_SUFFIX}"] = min(self.estimator.code_drf(volume)[0], self.top)
        return d
