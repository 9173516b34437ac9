"""Invertible, scale-equivariant intensity normalisation.

Every key is divided by s = the `percentile`-th percentile of the source image (the low-dose input), and
the inverse multiplies by s again. Because s(c x) = c s(x), the whole pipeline is scale-equivariant:
scaling the input by c scales the output by c, so Bq/mL, kBq/mL or SUV inputs all work unchanged.
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import InvertibleTransform, MapTransform

from ..errors import InputDataError
from .stacking import source_name

__all__ = ["PercentileScaled", "percentile_scale"]


def percentile_scale(image: Any, percentile: float = 99.5) -> float:
    """The normalisation scale of an image: its `percentile`-th percentile (must be > 0)."""
    values = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    scale = float(np.percentile(values.ravel(), percentile))
    if not np.isfinite(scale) or scale <= 0:
        raise InputDataError(f"{source_name(image)}: no positive intensities to normalise by (all zero or negative)")
    return scale


class PercentileScaled(MapTransform, InvertibleTransform):
    """Divide `keys` by the `percentile`-th percentile of `source_key`; invertible (Invertd multiplies back).

    The scale is also stored as `data[scale_key]` (a float) for code that inverts without Invertd.
    """

    def __init__(
        self,
        keys: KeysCollection,
        source_key: str = "image",
        percentile: float = 99.5,
        scale_key: str = "intensity_scale",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        if not 0 < percentile <= 100:
            raise InputDataError(f"setting percentile: expected a value in (0, 100], got {percentile}")
        self.source_key = source_key
        self.percentile = percentile
        self.scale_key = scale_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        scale = percentile_scale(d[self.source_key], self.percentile)
        for key in self.key_iterator(d):
            d[key] = d[key] / scale
            self.push_transform(d[key], extra_info={"scale": scale})
        d[self.scale_key] = scale
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            op = self.pop_transform(d[key])
            d[key] = d[key] * op["extra_info"]["scale"]
        return d
