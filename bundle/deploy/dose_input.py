"""The dose code channel of a dose-conditioned model at inference, and where each study's DRF came from.

The DRF is the `drf` setting (`--drf 20`, one value for every study of the run). With `--drf "'auto'"` it is
estimated from each study's image (`metrics.dose_estimation`, coefficients fitted on the training cohort and recorded
in `model_provenance.json` as `drf_estimator`), with a warning: measured on the test sets that estimate is off by a
factor of about 3 (1.7 in log2 on the training cohort itself), and a dose-conditioned model given the wrong DRF can
be worse than its input (docs/generalist/README.md), so the estimate is never used unasked. Without either, a
dose-conditioned model refuses the run in one line. No DICOM tag records a dose reduction (the injected activity is
recorded, but not the full dose it is a fraction of), so none is read.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigValueError
from ..metrics.dose_estimation import estimate_drf
from ..transforms.dose import dose_code
from .noise_check import provenance_of

__all__ = ["DoseInput", "recorded_drf_estimator", "shipped_dose_conditioning"]

logger = logging.getLogger(__name__)


def recorded_drf_estimator(provenance_file: str | Path, ckpt_path: str | Path) -> dict[str, Any] | None:
    """The DRF estimator recorded for the weights at `ckpt_path`, or None."""
    return (provenance_of(provenance_file, ckpt_path) or {}).get("drf_estimator")


def shipped_dose_conditioning(provenance_file: str | Path, ckpt_path: str | Path) -> bool:
    """Whether the weights at `ckpt_path` are a dose-conditioned model, as their provenance records it (False for
    weights the provenance does not describe: a user's checkpoint; set dose_conditioning then)."""
    return bool((provenance_of(provenance_file, ckpt_path) or {}).get("dose_conditioning"))


class DoseInput:
    """Called with a study's name and its preprocessed (1, X, Y, Z) image: returns the (1, X, Y, Z) dose-code map,
    logging the DRF used and where it came from."""

    def __init__(self, drf: float | str | None = None, estimator: dict[str, Any] | None = None) -> None:
        self.estimate = drf == "auto"
        if self.estimate and estimator is None:
            raise ConfigValueError(
                "setting drf: 'auto' needs weights whose model_provenance.json records a drf_estimator"
            )
        if drf is not None and not self.estimate:
            if isinstance(drf, bool) or not isinstance(drf, (int, float)):
                raise ConfigValueError(f"setting drf: expected a number >= 1 or 'auto', got {drf!r}")
            dose_code(drf)  # validated now: a one-line error for --drf 0.5
        self.drf = None if self.estimate or drf is None else float(drf)
        self.estimator = estimator

    def check(self) -> None:
        """Refuse (one line) a run without a DRF, before any study is read."""
        if self.drf is None and not self.estimate:
            raise ConfigValueError(
                "setting drf: the dose-conditioned model needs the studies' dose-reduction factor, e.g. --drf 20 "
                "(--drf \"'auto'\" estimates it from each image, unreliably: see docs/generalist/README.md)"
            )

    def __call__(self, name: str, image: Any) -> torch.Tensor:
        volume = torch.as_tensor(image)
        self.check()
        if self.drf is not None:
            drf = self.drf
            logger.info("study %s: DRF %.3g (drf setting)", name, drf)
        else:
            drf = estimate_drf(volume[0].float().cpu().numpy(), self.estimator)
            logger.warning("study %s: DRF %.3g (estimated from the image; unreliable, give --drf)", name, drf)
        return torch.full_like(volume[:1], dose_code(drf))
