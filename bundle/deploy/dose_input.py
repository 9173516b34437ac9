"""The dose code channel of a dose-conditioned model at inference, and where each study's DRF came from.

A study's DRF comes from, in this order:

- **given**: the `drf` setting (`--drf 20`, one value for every study of the run), an explicit override;
- **header**: a DICOM series whose header records its injected activity, times, frame duration and half-life, when
  a `reference_protocol` (the site's full-dose protocol the DRF is relative to) is declared (`header_dose`);
- **sidecar**: the same facts from a NIfTI study's BIDS-PET sidecar `<name>.json` (`header_dose.sidecar_dose`);
- **image**: the study's noise level read from the image by a noise estimator (`noise_estimation.NoiseEstimator`,
  `models/noise_estimator.json` when one is shipped, calibrated on the weights' training cohort), turned into the
  *equivalent DRF*: the DRF at which the model's training cohort had that noise, lowered by the record's
  `safety_margin_log2`. With such an estimator this is the default when neither source above applies. No estimator
  is shipped today: the one trained (docs/generalist/noise_estimator) reads the code 2-8x wrong on unseen cohorts.
  Without one, `drf: 'auto'` still asks for bundle 0.2's estimate (noise variance linear in the DRF, recorded in
  `model_provenance.json` as `drf_estimator`), with a warning: it over-states the DRF by 2-33x on studies unlike
  the training cohort, and a dose-conditioned model given too high a DRF can be worse than its input.

Without any of them a dose-conditioned model refuses the run in one line, before any study is read. A given DRF
above the range the weights were trained on (their provenance's `train_drfs`, 2-200 for the shipped model) is
refused; one below it is used with a warning. A header or image DRF above the range is lowered to its top, with a
warning. When the header (or sidecar) and the image estimate are both there and differ by more than 2x, the study is
named in a warning. Each study's DRF, its source and, from the image, its noise level are kept in `used` (for the
study's record and the run summary).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from ..errors import ConfigValueError
from ..metrics.dose_estimation import estimate_drf
from ..provenance import recorded_setting
from ..transforms.dose import dose_code
from .header_dose import ReferenceProtocol, header_drf, read_header_dose, read_sidecar_dose, sources_disagree
from .noise_check import provenance_of

__all__ = [
    "DEFAULT_TRAINED_DRFS",
    "DoseInput",
    "ImageEstimate",
    "matching_noise_estimator",
    "recorded_drf_estimator",
    "settings_drf_range",
    "shipped_dose_conditioning",
    "shipped_noise_estimator",
    "trained_drfs",
]

logger = logging.getLogger(__name__)
DEFAULT_TRAINED_DRFS = (2.0, 200.0)  # the shipped generalist's; for weights without a provenance


# (image) -> (equivalent DRF, log2 noise level or None): how an image estimate is made
ImageEstimate = Callable[[Any], "tuple[float, float | None]"]


def recorded_drf_estimator(provenance_file: str | Path, ckpt_path: str | Path) -> dict[str, Any] | None:
    """The noise-variance DRF fit recorded for the weights at `ckpt_path` (bundle 0.2's estimator), or None."""
    return (provenance_of(provenance_file, ckpt_path) or {}).get("drf_estimator")


def shipped_noise_estimator(record_file: str | Path, provenance_file: str | Path, ckpt_path: str | Path) -> Any | None:
    """The noise estimator at `record_file` when its dose calibration was fitted on the training cohort of the
    weights at `ckpt_path` (so its equivalent DRF is the code these weights learnt), else None."""
    provenance = provenance_of(provenance_file, ckpt_path) or {}
    if not provenance.get("dose_conditioning"):
        return None
    return matching_noise_estimator(record_file, provenance.get("training_datalist"))


def matching_noise_estimator(record_file: str | Path, trained_on: str | Path | None) -> Any | None:
    """The noise estimator at `record_file` when that file exists and its dose calibration was fitted on the cohort
    `trained_on` (a network's training datalist), else None (logged)."""
    from ..io import read_json
    from ..noise_estimation import NoiseEstimator

    record_path = Path(record_file)
    if not record_path.is_file():
        return None
    cohort = read_json(record_path, "noise estimator record").get("calibration", {}).get("cohort")
    if cohort is None or trained_on is None or Path(cohort).as_posix() != Path(str(trained_on)).as_posix():
        logger.info("%s: calibrated on %s, not on these weights' %s; not used", record_path, cohort, trained_on)
        return None
    return NoiseEstimator.load(record_path)


def _calibrated(estimator: Any) -> bool:
    """Whether `estimator` is a calibrated noise estimator (a default source of DRF), not bundle 0.2's fit."""
    return estimator is not None and not isinstance(estimator, Mapping)


def _image_estimate(estimator: Any) -> ImageEstimate | None:
    """A callable image estimate from a `NoiseEstimator` (its `code_drf`: the equivalent DRF lowered by its safety margin) or from bundle
    0.2's recorded noise-variance fit (a mapping of its coefficients)."""
    if estimator is None:
        return None
    if not _calibrated(estimator):
        coefficients = dict(estimator)
        return lambda image: (estimate_drf(image, coefficients), None)
    return estimator.code_drf


def shipped_dose_conditioning(provenance_file: str | Path, ckpt_path: str | Path) -> bool:
    """Whether the weights at `ckpt_path` are a dose-conditioned model, as their provenance records it (False for
    weights the provenance does not describe: a user's checkpoint; set dose_conditioning then)."""
    return bool((provenance_of(provenance_file, ckpt_path) or {}).get("dose_conditioning"))


def trained_drfs(provenance_file: str | Path, ckpt_path: str | Path) -> tuple[float, float]:
    """(lowest, highest) DRF the weights were trained on, from their provenance's training settings (the shipped
    generalist's 2-200 for weights without one)."""
    return settings_drf_range((provenance_of(provenance_file, ckpt_path) or {}).get("training_settings") or {})


def settings_drf_range(settings: Mapping[str, Any]) -> tuple[float, float]:
    """(lowest, highest) of a run's recorded `train_drfs` (2-200 when it records none)."""
    try:
        drfs = [float(d) for d in recorded_setting(settings, "train_drfs")]
    except (ValueError, TypeError):
        return DEFAULT_TRAINED_DRFS
    return (min(drfs), max(drfs)) if drfs else DEFAULT_TRAINED_DRFS


def _number(drf: Any) -> float:
    if isinstance(drf, bool) or not isinstance(drf, (int, float)):
        raise ConfigValueError(f"setting drf: expected a number >= 1 or 'auto', got {drf!r}")
    dose_code(drf)  # a one-line error for --drf 0.5
    return float(drf)


class DoseInput:
    """Called with a study's name, its preprocessed (1, X, Y, Z) image and, optionally, the study (its `image` path
    and `format`): returns the (1, X, Y, Z) dose-code map, logging the DRF used and its source."""

    def __init__(
        self,
        drf: float | str | None = None,
        estimator: dict[str, Any] | None = None,
        trained_range: tuple[float, float] = DEFAULT_TRAINED_DRFS,
        reference_protocol: Mapping[str, Any] | ReferenceProtocol | None = None,
    ) -> None:
        self.image_estimate = _image_estimate(estimator)
        self.calibrated = _calibrated(estimator)
        self.estimate = drf == "auto" or (drf is None and self.calibrated)
        if drf == "auto" and self.image_estimate is None:
            raise ConfigValueError(
                "setting drf: 'auto' needs a noise estimator calibrated for these weights (models/noise_estimator.json)"
                " or a drf_estimator in their model_provenance.json"
            )
        self.trained_range = (float(trained_range[0]), float(trained_range[1]))
        self.drf = None if self.estimate or drf is None else self._checked_given(_number(drf))
        self.estimator = estimator
        self.reference = (
            reference_protocol
            if isinstance(reference_protocol, ReferenceProtocol) or reference_protocol is None
            else ReferenceProtocol.from_setting(reference_protocol)
        )
        self.used: dict[str, dict[str, Any]] = {}
        self.noise_log2: dict[str, float | None] = {}

    def _checked_given(self, drf: float) -> float:
        low, high = self.trained_range
        if drf > high:
            raise ConfigValueError(
                f"setting drf: {drf:g} is above the DRFs the model was trained on ({low:g}-{high:g}); an over-stated "
                f"dose makes the output worse than its input, so give at most {high:g}"
            )
        if drf < low:
            logger.warning(
                "setting drf: %g is below the DRFs the model was trained on (%g-%g); used as given (an under-stated "
                "dose only denoises less)",
                drf,
                low,
                high,
            )
        return drf

    def check(self) -> None:
        """Refuse (one line) a run without any source of DRF, before any study is read."""
        if self.drf is None and not self.estimate and self.reference is None:
            raise ConfigValueError(
                "setting drf: the dose-conditioned model needs the studies' dose-reduction factor, e.g. --drf 20, or a "
                "reference_protocol to read it from DICOM headers (--drf \"'auto'\" estimates it from each image, "
                "unreliably: see docs/README.md, Limits)"
            )

    def _lowered(self, name: str, drf: float, source: str) -> float:
        high = self.trained_range[1]
        if drf > high:
            logger.warning(
                "study %s: the %s DRF %.3g is above the trained %g; %g is used", name, source, drf, high, high
            )
            return high
        return drf

    def resolve(self, name: str, image: Any, study: Mapping[str, Any] | None = None) -> tuple[float, str]:
        """(DRF, source) for one study."""
        if self.drf is not None:
            return self.drf, "given"
        header, source = None, "header"
        if self.reference is not None and study is not None:
            dose = None
            if study.get("format") == "dicom":
                dose = read_header_dose(study["image"])
            elif study.get("sidecar"):  # a NIfTI study's BIDS-PET sidecar
                dose, source = read_sidecar_dose(study["sidecar"]), "sidecar"
            header = None if dose is None else header_drf(dose, self.reference)
        image_drf = None
        if self.image_estimate is not None and (self.estimate or header is not None):
            image_drf, self.noise_log2[name] = self.image_estimate(torch.as_tensor(image)[0].float().cpu().numpy())
        if header is not None:
            if image_drf is not None and sources_disagree(header, image_drf):
                logger.warning(
                    "study %s: the %s says DRF %.3g, the image looks like %.3g (more than 2x apart); the "
                    "%s's is used: check the reference_protocol and the study's dose %s",
                    name,
                    "DICOM header" if source == "header" else "BIDS sidecar",
                    header,
                    image_drf,
                    source,
                    "tags" if source == "header" else "fields",
                )
            return self._lowered(name, header, source), source
        if self.estimate and image_drf is not None and not self.calibrated:
            logger.warning("study %s: DRF %.3g (estimated from the image; unreliable, give --drf)", name, image_drf)
            return self._lowered(name, image_drf, "image"), "image"
        if self.estimate and image_drf is not None:
            level = self.noise_log2.get(name)
            logger.info(
                "study %s: DRF %.3g, equivalent to its noise level%s (read from the image)",
                name,
                image_drf,
                "" if level is None else f" {2.0 ** level:.3g}",
            )
            return self._lowered(name, image_drf, "image"), "image"
        raise ConfigValueError(
            f"study {name}: no DRF: neither its DICOM header nor a BIDS sidecar ({name}.json) records its dose, and "
            "neither --drf nor --drf \"'auto'\" was given"
        )

    def __call__(
        self, name: str, image: Any, drf: float | str | None = None, study: Mapping[str, Any] | None = None
    ) -> torch.Tensor:
        """The dose-code map of a study; `drf` (a number or 'auto') overrides the setting for this study."""
        if drf is not None:
            override = DoseInput(drf, self.estimator, self.trained_range, self.reference)
            code = override(name, image, study=study)
            self.used[name] = override.used[name]
            return code
        value, source = self.resolve(name, image, study)
        self.used[name] = {"drf": round(value, 4), "source": source}
        level = self.noise_log2.get(name)
        if level is not None and math.isfinite(level):
            self.used[name]["relative_noise"] = round(2.0**level, 5)
        if source == "given":
            logger.info("study %s: DRF %.3g (drf setting)", name, value)
        return torch.full_like(torch.as_tensor(image)[:1], dose_code(value))
