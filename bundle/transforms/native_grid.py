"""The network's correction, returned on the study's own grid, with as much of the study's own fine detail as its
noise allows.

Inference resamples a study to the training spacing (2 mm) and the network predicts the full-dose image there.
Resampling that prediction back to a study with 1.5 mm pixels or 2.78 mm slices loses what the two interpolations
cost the image itself: 2.7 dB at DRF 4 on an independent study, more than the network gives there. The output is
therefore built on the study's own grid from three parts, with `back` the resampling from the network's grid:

    output = back(prediction) + w x (input - back(input at the network's grid))
           = w x (input + back(prediction - input_2mm)) + (1 - w) x back(prediction)

The second term is the detail of the input that the 2 mm grid cannot hold: fine structure, and noise. `w` = 1 keeps
it all (a zero correction then returns the input exactly, which is right for a nearly noise-free study); `w` = 0 is
the plain resampled prediction (bundle 0.2.0's output), which is right when that detail is mostly noise. The
inference default (since bundle 0.3.1) reads w from the study itself, with no DRF: w = intercept + slope x
`flat_band_reading` (clipped to 0-1), the `detail_reading` line fitted on a native-grid training cohort against each
study's best gain (`scripts/detail_band_gains.py`). Without that line (`detail_reading` None) w follows the DRF,
as in bundle 0.2.1-0.3.0: as the noise variance grows with the DRF, the Wiener gain of that band is
w = 1 / (1 + DRF / `detail_drf`), with `detail_drf` (the DRF at which the band's noise equals its signal) fitted for
the shipped weights on a native-grid tuning cohort (`scripts/fit_detail_gain.py`, recorded in their provenance); it
transfers badly to another simulator (docs/generalist/detail_band). Without a DRF or a fitted `detail_drf` that rule
gives w = 1. One w for the whole study also removes part of a small lesion's own peak, which is structure in that
band; with a `detail_local_gain` setting the kept share becomes w(x) = max(w, `local_band_gain`(x)), the band's
adaptive Wiener gain, near 1 where the band holds more than noise (docs/generalist/detail_local_gain).

- `NetworkCorrectiond` (before `Invertd`): `pred := pred - image` on the network's grid (the first channel of the
  network input), and a copy of that channel as `roundtrip_key`, so that `Invertd` brings both back.
- `AddToNatived` (after `Invertd`): the formula above, with `native` the study as loaded (kept by MONAI's
  `CopyItemsd` before any reorientation or resampling) and the DRF the model used (`dose_key`); the helper keys are
  dropped from the item.

Both do nothing with `enabled=False` (the output is then the resampled prediction, as in 0.2.0).
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

from ..errors import InputDataError

__all__ = [
    "AddToNatived",
    "NetworkCorrectiond",
    "detail_weight",
    "flat_band_reading",
    "line_gain",
    "local_band_gain",
    "local_gain_setting",
    "read_gain",
    "reading_line",
    "uptake_and_flat",
]

FLAT_FRACTION = 0.3  # the flattest part of the brain, where the sub-grid band should hold noise alone


def detail_weight(drf: float | None, detail_drf: float | None) -> float:
    """The Wiener gain of the study's sub-grid detail: 1 / (1 + DRF / detail_drf); 1 without either."""
    if drf is None or detail_drf is None:
        return 1.0
    return 1.0 / (1.0 + float(drf) / float(detail_drf))


def reading_line(line: Any) -> dict[str, float] | None:
    """The `detail_reading` setting as {intercept, slope} floats (other keys, such as a comment, dropped), or None;
    anything else is refused in one line."""
    if line is None:
        return None
    if not (isinstance(line, Mapping) and {"intercept", "slope"} <= set(line)):
        raise InputDataError(f"setting detail_reading: expected {{'intercept', 'slope'}} or null, got {line!r}")
    return {k: float(line[k]) for k in ("intercept", "slope")}


EMPTY_BAND = 1e-10  # a band whose mean square is below this fraction of the image's is empty (float rounding)


def uptake_and_flat(image: np.ndarray, brain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smoothed uptake (floored at 1e-3 of its brain mean), which Poisson-like noise variance follows, and the
    brain's flattest `FLAT_FRACTION` (lowest gradient of the smoothed image), where the band should hold noise alone."""
    from scipy.ndimage import gaussian_filter

    smooth = gaussian_filter(image, 1.5)
    uptake = np.maximum(smooth, max(1e-3 * float(smooth[brain].mean()), 1e-12))
    gradient = np.sqrt(sum(np.square(g) for g in np.gradient(gaussian_filter(image, 2.0))))
    return uptake, brain & (gradient <= np.quantile(gradient[brain], FLAT_FRACTION))


def flat_band_reading(image: np.ndarray, band: np.ndarray, brain: np.ndarray) -> float:
    """1 - N / E for a (X, Y, Z) study, its sub-grid band and its brain mask: E is the mean square of the band over the
    brain and N over its flattest `FLAT_FRACTION`, each voxel divided by the square root of the smoothed uptake so that
    Poisson-like noise is about stationary; about 0 for a band of noise, 1 for one that is all structure. 1 when the
    band is empty (a study on the network's grid)."""
    image, band = np.asarray(image, dtype=np.float64), np.asarray(band, dtype=np.float64)
    if not brain.any():
        return 1.0
    uptake, flat = uptake_and_flat(image, brain)
    normalised = band / np.sqrt(uptake)
    total = float(np.mean(normalised[brain] ** 2))
    scale = float(np.mean(np.square(image[brain]) / uptake[brain]))
    if not total > EMPTY_BAND * scale:  # rounding only: the study is on the network's grid
        return 1.0
    return max(0.0, 1.0 - float(np.mean(normalised[flat] ** 2)) / total)


def line_gain(reading: float, line: Mapping[str, float]) -> float:
    """A gain from a band reading through `line` ({intercept, slope}), clipped to 0-1."""
    return float(np.clip(line["intercept"] + line["slope"] * reading, 0.0, 1.0))


def read_gain(image: np.ndarray, band: np.ndarray, brain: np.ndarray, line: Mapping[str, float]) -> float:
    """The study-wide gain read from the study: `line_gain` of its `flat_band_reading`."""
    return line_gain(flat_band_reading(image, band, brain), line)


def local_gain_setting(value: Any) -> dict[str, float] | None:
    """The `detail_local_gain` setting as {sigma_voxels, noise_factor} floats > 0 (other keys dropped), or None;
    anything else is refused in one line."""
    if value is None:
        return None
    keys = ("sigma_voxels", "noise_factor")
    if not (isinstance(value, Mapping) and set(keys) <= set(value)):
        raise InputDataError(
            f"setting detail_local_gain: expected {{'sigma_voxels', 'noise_factor'}} or null, got {value!r}"
        )
    out = {k: float(value[k]) for k in keys}
    if not all(v > 0 for v in out.values()):
        raise InputDataError(f"setting detail_local_gain: sigma_voxels and noise_factor must be > 0, got {value!r}")
    return out


def local_band_gain(
    image: np.ndarray,
    band: np.ndarray,
    brain: np.ndarray,
    sigma_voxels: float,
    noise_factor: float,
    study_uptake: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The band's adaptive (local) Wiener gain at each voxel, w(x) = max(0, 1 - k N(x) / P(x)): P the band's local
    power (its square smoothed by a Gaussian of `sigma_voxels`), N(x) = c x the smoothed uptake with c the band's
    power per unit uptake over the brain's flattest part (noise alone there), k = `noise_factor`. Near 1 where the
    band holds more than noise (edges, small lesions), near 0 where it is noise; 1 everywhere for an empty band.
    `study_uptake` is the study's `uptake_and_flat`, when already computed (one study, several rules)."""
    from scipy.ndimage import gaussian_filter

    image, band = np.asarray(image, dtype=np.float64), np.asarray(band, dtype=np.float64)
    if not brain.any():
        return np.ones_like(band)
    uptake, flat = uptake_and_flat(image, brain) if study_uptake is None else study_uptake
    per_uptake = float(np.mean(band[flat] ** 2 / uptake[flat]))
    power = gaussian_filter(band**2, float(sigma_voxels))
    return np.clip(1.0 - float(noise_factor) * per_uptake * uptake / np.maximum(power, 1e-30), 0.0, 1.0)


class NetworkCorrectiond(MapTransform):
    """`keys` := `keys` - `input_key`[:1]: the network's correction on the grid it ran on; `input_key`[:1] is copied
    to `roundtrip_key` (with its history) so that it can be brought back too."""

    def __init__(
        self,
        keys: KeysCollection = "pred",
        input_key: str = "image",
        enabled: bool = True,
        roundtrip_key: str = "network_input",
    ) -> None:
        super().__init__(keys)
        self.input_key, self.enabled, self.roundtrip_key = input_key, bool(enabled), roundtrip_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if not self.enabled:
            return d
        image = d[self.input_key]
        source = torch.as_tensor(image)[:1]
        for key in self.key_iterator(d):
            pred = d[key]
            if tuple(pred.shape[1:]) != tuple(source.shape[1:]):
                raise InputDataError(
                    f"the prediction's shape {tuple(pred.shape[1:])} differs from its input's {tuple(source.shape[1:])}"
                )
            correction = torch.as_tensor(pred) - source.to(torch.as_tensor(pred).dtype)
            d[key] = MetaTensor(correction, meta=pred.meta) if isinstance(pred, MetaTensor) else correction
            if isinstance(pred, MetaTensor):
                d[key].applied_operations = list(pred.applied_operations)
        copy = MetaTensor(source.clone(), meta=dict(image.meta)) if isinstance(image, MetaTensor) else source.clone()
        if isinstance(image, MetaTensor):
            copy.applied_operations = list(image.applied_operations)
        d[self.roundtrip_key] = copy
        return d


class AddToNatived(MapTransform):
    """`keys` := the correction (`keys`, on the native grid) + w x `native_key` + (1 - w) x `roundtrip_key`, with
    w = `detail_weight(d[dose_key], detail_drf)`, or read from the study with a `detail_reading` line
    ({"intercept", "slope"}); w is stored as `detail_weight`; with `detail_local_gain` ({"sigma_voxels",
    "noise_factor"}) w becomes, voxel by voxel, max(w, `local_band_gain`). The helper keys are removed (the native
    image stays with `keep_native`, for a later step that reads it and removes it: `RestoreHotUptaked`; so does
    the study's estimated support as `<native_key>_support` where the band was read, so that step need not
    estimate it again)."""

    def __init__(
        self,
        keys: KeysCollection = "pred",
        native_key: str = "native_image",
        enabled: bool = True,
        roundtrip_key: str = "network_input",
        dose_key: str = "dose_used",
        detail_drf: float | None = None,
        detail_reading: Mapping[str, float] | None = None,
        detail_local_gain: Mapping[str, float] | None = None,
        keep_native: bool = False,
    ) -> None:
        super().__init__(keys)
        self.native_key, self.enabled, self.roundtrip_key = native_key, bool(enabled), roundtrip_key
        self.keep_native = bool(keep_native)
        self.dose_key = dose_key
        if detail_drf is not None and (isinstance(detail_drf, bool) or not float(detail_drf) > 0):
            raise InputDataError(f"setting detail_drf: expected a number > 0 or null, got {detail_drf!r}")
        self.detail_drf = None if detail_drf is None else float(detail_drf)
        self.detail_reading = reading_line(detail_reading)
        self.detail_local_gain = local_gain_setting(detail_local_gain)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        native = d.get(self.native_key) if self.keep_native else d.pop(self.native_key, None)
        roundtrip = d.pop(self.roundtrip_key, None)
        if not self.enabled:
            return d
        if native is None:
            raise InputDataError(
                f"the study's native image '{self.native_key}' was not kept; the preprocessing must copy it "
                "(CopyItemsd) before resampling"
            )
        weight = detail_weight(d.get(self.dose_key), self.detail_drf)
        study_band = None  # read once, for both gains
        if self.detail_reading is not None:
            study_band = self._study_band(native, roundtrip)
            weight = read_gain(*study_band, self.detail_reading)
        d["detail_weight"] = weight
        gain: Any = weight
        if self.detail_local_gain is not None and weight < 1.0:
            if study_band is None:
                study_band = self._study_band(native, roundtrip)
            gain = torch.from_numpy(np.maximum(weight, local_band_gain(*study_band, **self.detail_local_gain)))[None]
        if self.keep_native and study_band is not None:
            d[f"{self.native_key}_support"] = study_band[2]
        for key in self.key_iterator(d):
            correction = torch.as_tensor(d[key])
            base = torch.as_tensor(native)[:1].to(correction.dtype)
            if tuple(correction.shape) != tuple(base.shape):
                raise InputDataError(
                    f"the correction's shape {tuple(correction.shape)} differs from the study's {tuple(base.shape)} "
                    "after inversion"
                )
            if weight < 1.0:
                if roundtrip is None:
                    raise InputDataError(f"the network input '{self.roundtrip_key}' was not brought back to the grid")
                kept = gain.to(correction.dtype) if isinstance(gain, torch.Tensor) else gain
                base = kept * base + (1.0 - kept) * torch.as_tensor(roundtrip)[:1].to(correction.dtype)
            meta = native.meta if isinstance(native, MetaTensor) else getattr(d[key], "meta", {})
            d[key] = MetaTensor(base + correction, meta=dict(meta))
        return d

    def _study_band(self, native: Any, roundtrip: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(the study, its band: the study minus its round trip, its estimated support), each (X, Y, Z)."""
        from ..metrics.image_quality import estimate_support_mask

        if roundtrip is None:
            raise InputDataError(f"the network input '{self.roundtrip_key}' was not brought back to the grid")
        image = torch.as_tensor(native)[0].float().cpu().numpy()
        band = image - torch.as_tensor(roundtrip)[0].float().cpu().numpy()
        return image, band, estimate_support_mask(image)
