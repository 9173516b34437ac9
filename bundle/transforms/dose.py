"""Dose levels in training and the dose code of a dose-conditioned network.

- `DoseLevelScalesd` (deterministic, cached): the percentile scale of each dose level's image of a subject.
- `RandDoseLeveld` (random): one dose level per draw; its image becomes `image`, scaled by its own percentile,
  and the full dose `label` by the same scale (so the pair stays matched); its DRF is stored as `drf` (the DRF
  read from that image, `<key>_code_drf`, where an image-coded profile stored one; the label is kept as
  `labelled_drf`).
- `RandDoseCodeSpreadd` (random, training only): the item's `drf` multiplied by 2^u, u uniform in
  [-spread_log2, spread_log2] (at least 1), so that the code is only a rough hint of the noise level and the network
  must read the rest from the image: issue 29's wider count spread, emulated on the code side (the images and their
  counts are the cohort's own; `labelled_drf` keeps the true label).
- `DoseCoded`: a constant map of `dose_code(drf)` as an extra input channel, for `ResidualUNet2p5D(dose_conditioning=
  True)`. The DRF is the item's `drf` (the datalist's), else the `drf` setting, else a one-line error.
"""

from __future__ import annotations

import math
from typing import Any, Hashable, Mapping, Sequence

import torch
from monai.transforms import MapTransform, RandomizableTransform

from ..data.datalist import dose_key
from ..errors import ConfigValueError, InputDataError
from .intensity import percentile_scale

__all__ = ["DoseCoded", "DoseLevelScalesd", "RandDoseCodeSpreadd", "RandDoseLeveld", "dose_code"]

CODE_DRF = 200.0  # dose_code(200) = 1
CODE_DRF_SUFFIX = "_code_drf"  # `<dose key>_code_drf`: the DRF read from that image (noise_estimation.ImageCodeDrfd)


def dose_code(drf: float) -> float:
    """log(DRF) / log(200): 0 at full dose, 1 at the paper's DRF 200."""
    drf = float(drf)
    if not math.isfinite(drf) or drf < 1:
        raise ConfigValueError(f"setting drf: a dose-reduction factor is >= 1, got {drf!r}")
    return math.log(drf) / math.log(CODE_DRF)


class DoseLevelScalesd(MapTransform):
    """Store the `percentile`-th percentile of each dose level's image as `<key>_scale`."""

    def __init__(self, drfs: Sequence[float], percentile: float = 99.5) -> None:
        super().__init__([dose_key(d) for d in drfs])
        self.percentile = percentile

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[f"{key}_scale"] = percentile_scale(d[key], self.percentile)
        return d


class RandDoseLeveld(RandomizableTransform, MapTransform):
    """Draw one of `drfs` (uniformly): `image` = that level's image / its scale, `label` / the same scale, `drf`.

    The other levels' images are left out of the output, so later transforms handle one image per draw.
    """

    def __init__(self, drfs: Sequence[float], label_key: str = "label", image_key: str = "image") -> None:
        RandomizableTransform.__init__(self, prob=1.0)
        MapTransform.__init__(self, [dose_key(d) for d in drfs])
        if not drfs:
            raise ConfigValueError("setting train_drfs: at least one dose level is needed")
        self.drfs = [float(d) for d in drfs]
        self.label_key, self.image_key = label_key, image_key
        self._drf = self.drfs[0]

    def randomize(self, data: Any = None) -> None:
        self._drf = self.drfs[int(self.R.randint(len(self.drfs)))]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        self.randomize()
        key = dose_key(self._drf)
        if key not in data:
            raise InputDataError(f"subject {data.get('subject', '?')}: no image at DRF {self._drf:g} ({key})")
        scale = data[f"{key}_scale"]
        d = {k: v for k, v in data.items() if k not in self.keys and not str(k).endswith(("_scale", CODE_DRF_SUFFIX))}
        d[self.image_key] = data[key] / scale
        d[self.label_key] = data[self.label_key] / scale
        d["drf"] = data.get(f"{key}{CODE_DRF_SUFFIX}", self._drf)
        d["labelled_drf"] = self._drf
        return d


class RandDoseCodeSpreadd(RandomizableTransform, MapTransform):
    """Multiply the item's `drf_key` by 2^u, u ~ U(-spread_log2, spread_log2), floored at DRF 1 (the full dose)."""

    def __init__(self, spread_log2: float, drf_key: str = "drf") -> None:
        RandomizableTransform.__init__(self, prob=1.0)
        MapTransform.__init__(self, [drf_key])
        spread = float(spread_log2)
        if not math.isfinite(spread) or spread < 0:
            raise ConfigValueError(f"setting code_spread_log2: expected a number >= 0, got {spread_log2!r}")
        self.spread_log2, self.drf_key = spread, drf_key
        self._log2_factor = 0.0

    def randomize(self, data: Any = None) -> None:
        self._log2_factor = float(self.R.uniform(-self.spread_log2, self.spread_log2))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        self.randomize()
        d = dict(data)
        if self.drf_key not in d:
            raise InputDataError(
                f"subject {d.get('subject', '?')}: no {self.drf_key} to spread (draw a dose level first)"
            )
        d[self.drf_key] = max(1.0, float(d[self.drf_key]) * 2.0**self._log2_factor)
        return d


class DoseCoded(MapTransform):
    """Add `output_key`: a (1, X, Y, Z) map of the dose code, shaped as `reference_key`'s volume."""

    def __init__(
        self, output_key: str = "dose", reference_key: str = "image", drf_key: str = "drf", drf: float | None = None
    ) -> None:
        super().__init__([reference_key])
        self.output_key, self.reference_key, self.drf_key = output_key, reference_key, drf_key
        self.drf = None if drf is None else float(drf)
        if self.drf is not None:
            dose_code(self.drf)  # validated now

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        drf = d.get(self.drf_key, self.drf)
        if drf is None:
            raise ConfigValueError(
                f"study {d.get('subject', d.get('name', '?'))}: a dose-conditioned model needs its DRF: give it as "
                "`drf` in the datalist item or as --drf"
            )
        reference = torch.as_tensor(d[self.reference_key])
        d[self.output_key] = torch.full_like(reference[:1], dose_code(float(drf)))
        return d
