"""A lesion's noise floor: how much its uptake varies between independent low-dose acquisitions of the same counts.

Each repeat is an independent binomial thinning of the same full-dose counts to one DRF, reconstructed as the
dataset's images are (`simulation.simulate_subject_volumes(repeat_thinnings=...)`). The SD over repeats of a lesion's
SUVmean (as a percentage of the full-dose image's) is the spread an unbiased method at that dose cannot beat; a
denoiser's bias on a small lesion is read against it (a bias within 2 SD of the floor is indistinguishable from one
acquisition's luck).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..metrics.lesion import bias_pct, lesion_values

__all__ = ["lesion_noise_floor"]


def lesion_noise_floor(
    repeats: Sequence[np.ndarray],
    full: np.ndarray,
    lesion_map: np.ndarray,
    kinds: Mapping[str, str],
    voxel_size_mm: tuple[float, float, float],
) -> list[dict[str, Any]]:
    """Per lesion label: {label, kind, voxels, repeats, suv_mean_sd_pct, suv_max_sd_pct, suv_mean_bias_pct (mean over
    repeats: the input's own bias), suv_max_bias_pct}; SDs with ddof 1, in percent of the full-dose value."""
    rows = []
    for label in sorted(int(v) for v in np.unique(lesion_map) if v > 0):
        mask = lesion_map == label
        reference = lesion_values(full, mask, voxel_size_mm)
        values = [lesion_values(image, mask, voxel_size_mm) for image in repeats]
        mean_bias = [bias_pct(v["suv_mean"], reference["suv_mean"]) for v in values]
        max_bias = [bias_pct(v["suv_max"], reference["suv_max"]) for v in values]
        rows.append(
            {
                "label": label,
                "kind": kinds.get(str(label), "lesion"),
                "voxels": int(mask.sum()),
                "repeats": len(values),
                "suv_mean_sd_pct": float(np.std(mean_bias, ddof=1)) if len(values) > 1 else float("nan"),
                "suv_max_sd_pct": float(np.std(max_bias, ddof=1)) if len(values) > 1 else float("nan"),
                "suv_mean_bias_pct": float(np.mean(mean_bias)),
                "suv_max_bias_pct": float(np.mean(max_bias)),
            }
        )
    return rows
