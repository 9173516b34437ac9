"""The hot-focus uptake restore, chosen on a training cohort and measured against the shipped output (issue 31).

The network lowers a hot lesion's uptake at DRF 100-200 much as a Gaussian does. `transforms.hot_uptake` raises each
hot focus of its output by the mean of what it removed there, so that the focus keeps the input's counts. Every study
is run once through the shipped inference components (the output without the restore); each rule's output is
`restore_hot_uptake` of it, which is exactly what `RestoreHotUptaked` computes at the end of the inference path
(tested), so the numbers are the inference path's. The threshold is chosen on a training cohort, never a test set: the
one with the smallest mean |hot SUVmean bias| at DRF 50-200 among those within `detail_local.PSNR_ALLOWANCE_DB` of the
shipped output's mean PSNR at every DRF.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..metrics.image_quality import estimate_support_mask
from ..transforms.hot_uptake import restore_hot_uptake
from .detail_local import lesion_mean, scored_rows

__all__ = ["GRID", "SHIPPED", "rule_name", "rule_rows", "threshold_rows"]

GRID = (1.2, 1.3, 1.4, 1.5, 1.6, 1.8, 2.0)  # thresholds, x the output's 90th percentile in the brain
SHIPPED = "shipped output"


def rule_name(threshold: float) -> str:
    return f"hot restore (threshold {threshold:g})"


def rule_rows(
    subject: str,
    drf: float,
    low: np.ndarray,
    output: np.ndarray,
    references: Any,
    kinds: Mapping[str, str] | None,
    grid: Sequence[float] = GRID,
) -> list[dict[str, Any]]:
    """One row per rule (the shipped output, then each restore of `grid`) for one study, as `scored_rows` gives
    them; `low` and `output` (the shipped output) are the study's RAS volumes on its own grid."""
    brain = estimate_support_mask(low)
    outputs: dict[str, np.ndarray] = {SHIPPED: np.asarray(output, dtype=np.float64)}
    for threshold in grid:
        outputs[rule_name(threshold)] = restore_hot_uptake(low, output, brain, threshold)
    return scored_rows(subject, drf, outputs, references, kinds)


def threshold_rows(
    rows: Sequence[dict[str, Any]], test_set: str, drfs: Sequence[float] = (100.0, 200.0)
) -> list[dict[str, str]]:
    """Every rule of `rows` (one set) at each of `drfs`: its mean PSNR against the shipped output's and its hot
    lesions' mean |SUVmean|, |SUVmax| and |SUVpeak bias| (%), the trade-off the chosen threshold sits on."""
    out = []
    for drf in drfs:
        at = [r for r in rows if r["drf"] == drf]
        if not at:
            continue
        base = float(np.mean([r["psnr"] for r in at if r["rule"] == SHIPPED]))
        for rule in dict.fromkeys(r["rule"] for r in at):
            mine = [r for r in at if r["rule"] == rule]

            def mean_abs(key: str) -> str:
                value = lesion_mean(mine, key, abs)
                return "" if np.isnan(value) else f"{value:.1f}"

            out.append(
                {
                    "test set": test_set,
                    "DRF": f"{drf:g}",
                    "rule": rule,
                    "PSNR - shipped, dB": f"{np.mean([r['psnr'] for r in mine]) - base:+.2f}",
                    "hot mean abs SUVmean bias %": mean_abs("hot_suv_mean_bias_pct"),
                    "SUVmax": mean_abs("hot_suv_max_bias_pct"),
                    "SUVpeak": mean_abs("hot_suv_peak_bias_pct"),
                }
            )
    return out
