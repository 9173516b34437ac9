"""A dose-blind denoiser's own reading of a study's noise level (issue 29: "or the network's own encoder").

On the network's 2 mm grid (the shipped inference's preprocessing), the reading is the root-mean-square of what the
network removes, low - network(low), over the low-dose image's eroded support, relative to its mean there: the noise
the denoiser sees. A line in log2 (fitted on training-cohort studies) turns it into the physics noise level that
`metrics.relative_noise` measures from the pair, and a second line (the same studies' noise against their DRF
labels) into the equivalent DRF, so the records are those of `evaluation.estimator_records` and the report is the
band estimator's, side by side.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..data import at_dose, load_datalist
from ..metrics.relative_noise import brain_mean, noise_mask, relative_noise_log2
from ..metrics.statistics import fit_line
from .estimator import equivalent_drf
from .evaluation import on_network_grid

__all__ = ["calibrated_records", "reading_records", "removed_noise_reading"]


def removed_noise_reading(run: Any, path: str) -> tuple[float, np.ndarray, tuple[float, ...]]:
    """(log2 of the relative RMS of low - network(low), the low-dose volume, its voxel size) on the network's grid,
    for a `deploy.trained_denoiser.TrainedDenoiser` whose network takes the image alone (dose-blind)."""
    if run.dose_conditioned or run.mr_keys:
        raise ValueError("the removed-noise reading needs a dose-blind, PET-only network")
    prepared = run.preprocessing({"image": str(path), "name": str(path)})
    image = torch.as_tensor(prepared["image"])
    with torch.no_grad():
        pred = run.denoiser.inferer(image[None].to(run.denoiser.device), run.denoiser.network)[0].cpu()
    low, out = image[0].float().numpy(), pred[0].float().numpy()
    mask = noise_mask(low)
    rms = float(np.sqrt(np.mean((low - out)[mask] ** 2)))
    spacing = tuple(float(v) for v in prepared["image"].pixdim)
    return float(np.log2(rms / brain_mean(low, mask))), low, spacing


def reading_records(
    run: Any, test_sets: Mapping[str, tuple[str, int | None]], drfs: Sequence[float]
) -> list[dict[str, Any]]:
    """{test_set, subject, drf, measured_log2, reading_log2} for the first `count` (None: all) studies of each test set
    ({name: (datalist, count)}) at every DRF; the noise is measured from the pair on the same grid."""
    records = []
    for name, (datalist, count) in test_sets.items():
        for item in load_datalist(datalist)[:count]:
            full = None
            for drf in drfs:
                reading, low, spacing = removed_noise_reading(run, at_dose([item], float(drf))[0]["image"])
                full = on_network_grid(item["label"], spacing) if full is None else full
                measured = relative_noise_log2(low, full)
                records.append(
                    {"test_set": name, "subject": item["subject"], "drf": float(drf), "measured_log2": measured}
                    | {"reading_log2": reading}
                )
    return records


def calibrated_records(
    records: Sequence[Mapping[str, Any]], fit_set: str
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """The records of the other test sets with `estimated_log2` (the reading through the line fitted on `fit_set`'s
    records) and the equivalent DRFs of the measured and estimated noise (through `fit_set`'s noise against DRF), as
    `evaluation.estimator_records` gives them; and the two calibrations."""
    fitting = [r for r in records if r["test_set"] == fit_set]
    if len(fitting) < 3:
        raise ValueError(f"the reading's calibration needs studies of '{fit_set}', got {len(fitting)}")
    reading = fit_line([r["reading_log2"] for r in fitting], [r["measured_log2"] for r in fitting])
    dose = fit_line([np.log2(r["drf"]) for r in fitting], [r["measured_log2"] for r in fitting])
    out = []
    for r in records:
        if r["test_set"] == fit_set:
            continue
        estimated = reading["intercept"] + reading["slope"] * r["reading_log2"]
        out.append(
            dict(
                r,
                estimated_log2=estimated,
                equivalent_drf_measured=equivalent_drf(r["measured_log2"], dose),
                equivalent_drf_estimated=equivalent_drf(estimated, dose),
                legacy_drf=None,
            )
        )
    return out, {"reading": reading, "dose": dose}
