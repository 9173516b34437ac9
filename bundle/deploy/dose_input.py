"""The dose code channel of a dose-conditioned model at inference, and where each study's DRF came from.

A study's DRF comes from, in this order:

- **given**: the `drf` setting (`--drf 20`, one value for every study of the run);
- **header**: a DICOM series whose header records its injected activity, times, frame duration and half-life, when
  a `reference_protocol` (the site's full-dose protocol the DRF is relative to) is declared (`header_dose`);
- **image**: with `--drf "'auto'"`, an estimate from the image (`metrics.dose_estimation`, coefficients fitted on
  the training cohort and recorded in `model_provenance.json` as `drf_estimator`), with a warning: that estimate
  over-states the DRF by 2-33x on studies unlike the training cohort, and a dose-conditioned model given too high a
  DRF can be worse than its input (docs/generalist/README.md), so it is never used unasked.

Without any of them a dose-conditioned model refuses the run in one line, before any study is read. A given DRF
above the range the weights were trained on (their provenance's `train_drfs`, 2-200 for the shipped model) is
refused; one below it is used with a warning. A header or image DRF above the range is lowered to its top, with a
warning: the model tolerates an under-stated dose, not an over-stated one. When the header and an image estimate
are both there and differ by more than 2x, the study is named in a warning. Each study's DRF and its source are kept
in `used` (for the study's record and the run summary).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import ConfigValueError
from ..metrics.dose_estimation import estimate_drf
from ..provenance import recorded_setting
from ..transforms.dose import dose_code
from .header_dose import ReferenceProtocol, header_drf, read_header_dose, sources_disagree
from .noise_check import provenance_of

__all__ = ["DEFAULT_TRAINED_DRFS", "DoseInput", "recorded_drf_estimator", "shipped_dose_conditioning", "trained_drfs"]

logger = logging.getLogger(__name__)
DEFAULT_TRAINED_DRFS = (2.0, 200.0)  # the shipped generalist's; for weights without a provenance


def recorded_drf_estimator(provenance_file: str | Path, ckpt_path: str | Path) -> dict[str, Any] | None:
    """The DRF estimator recorded for the weights at `ckpt_path`, or None."""
    return (provenance_of(provenance_file, ckpt_path) or {}).get("drf_estimator")


def shipped_dose_conditioning(provenance_file: str | Path, ckpt_path: str | Path) -> bool:
    """Whether the weights at `ckpt_path` are a dose-conditioned model, as their provenance records it (False for
    weights the provenance does not describe: a user's checkpoint; set dose_conditioning then)."""
    return bool((provenance_of(provenance_file, ckpt_path) or {}).get("dose_conditioning"))


def trained_drfs(provenance_file: str | Path, ckpt_path: str | Path) -> tuple[float, float]:
    """(lowest, highest) DRF the weights were trained on, from their provenance's training settings (the shipped
    generalist's 2-200 for weights without one)."""
    settings = (provenance_of(provenance_file, ckpt_path) or {}).get("training_settings") or {}
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
        self.estimate = drf == "auto"
        if self.estimate and estimator is None:
            raise ConfigValueError(
                "setting drf: 'auto' needs weights whose model_provenance.json records a drf_estimator"
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
                "unreliably: see docs/generalist/README.md)"
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
        header = None
        if self.reference is not None and study is not None and study.get("format") == "dicom":
            dose = read_header_dose(study["image"])
            header = None if dose is None else header_drf(dose, self.reference)
        image_drf = None
        if self.estimator is not None and (self.estimate or header is not None):
            image_drf = estimate_drf(torch.as_tensor(image)[0].float().cpu().numpy(), self.estimator)
        if header is not None:
            if image_drf is not None and sources_disagree(header, image_drf):
                logger.warning(
                    "study %s: the DICOM header says DRF %.3g, the image looks like %.3g (more than 2x apart); the "
                    "header's is used: check the reference_protocol and the study's dose tags",
                    name,
                    header,
                    image_drf,
                )
            return self._lowered(name, header, "header"), "header"
        if self.estimate and image_drf is not None:
            logger.warning("study %s: DRF %.3g (estimated from the image; unreliable, give --drf)", name, image_drf)
            return self._lowered(name, image_drf, "image"), "image"
        raise ConfigValueError(
            f"study {name}: no DRF: its header records no dose (or it is not DICOM) and neither --drf nor "
            "--drf \"'auto'\" was given"
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
        if source == "given":
            logger.info("study %s: DRF %.3g (drf setting)", name, value)
        return torch.full_like(torch.as_tensor(image)[:1], dose_code(value))
