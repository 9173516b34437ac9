"""The sub-2 mm band's local gain, chosen on a training cohort and measured against the global read gain (issues 29, 31).

Off the 2 mm grid, inference outputs R + w x band (`transforms.native_grid`): R the network's output with w = 0, band
the study minus its round trip through the 2 mm grid, and w one gain for the whole study, read from it. A small lesion
is structure in that band, so a w that suits the study's noise removes part of the lesion's own peak. The local gain
keeps the band voxel by voxel where it holds more than noise: w(x) = max(w, local Wiener gain(x))
(`native_grid.local_band_gain`, setting `detail_local_gain`).

Every study is run through the shipped inference components once (R); the band comes from the same components with a
zero correction, and each rule's output is R + w(x) x band, which is exactly what `AddToNatived` computes with that
rule (tested), so the numbers are the inference path's. The rule (sigma_voxels, noise_factor) is chosen on a training
cohort off the 2 mm grid, never a test set: the one that keeps the most of the hot lesions' SUVmax at the highest
DRFs among those within `PSNR_ALLOWANCE_DB` of the read gain's mean PSNR at every DRF.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..metrics.image_quality import estimate_support_mask, masked_psnr
from ..metrics.lesion import bias_pct, lesion_values
from ..metrics.statistics import paired_comparison
from ..quantification.records import KIND_POLARITY
from ..transforms.native_grid import local_band_gain, read_gain, uptake_and_flat

__all__ = [
    "GRID",
    "PSNR_ALLOWANCE_DB",
    "READ_GAIN",
    "choose_rule",
    "lesion_mean",
    "rule_name",
    "rule_rows",
    "scored_rows",
    "summary_rows",
]

GRID = [(s, k) for s in (1.0, 2.0, 3.0) for k in (1.0, 1.5, 2.0, 3.0)]  # (sigma_voxels, noise_factor)
PSNR_ALLOWANCE_DB = 0.05  # the chosen rule's mean PSNR may fall at most this far below the read gain's, at any DRF
LESION_DRFS = (50.0, 100.0, 200.0)  # where the rule is chosen by its hot lesions' SUVmax
READ_GAIN = "read gain"


def rule_name(sigma_voxels: float, noise_factor: float) -> str:
    return f"local gain (sigma {sigma_voxels:g} voxels, noise factor {noise_factor:g})"


def rule_rows(
    subject: str,
    drf: float,
    low: np.ndarray,
    resampled: np.ndarray,
    roundtrip: np.ndarray,
    line: Mapping[str, float],
    references: Any,
    kinds: Mapping[str, str] | None,
    grid: Sequence[tuple[float, float]] = GRID,
) -> list[dict[str, Any]]:
    """One row per rule (the read gain, then each local gain of `grid`) for one study: its PSNR in the brain and each
    hot lesion's SUVmean and SUVmax bias against the full dose. `low`, `resampled` (the output with w = 0) and
    `roundtrip` are the study's RAS volumes on its own grid; `line` the read gain's {intercept, slope}."""
    band = low - roundtrip
    brain = estimate_support_mask(low)
    weight = read_gain(low, band, brain, line)
    outputs: dict[str, np.ndarray] = {READ_GAIN: resampled + weight * band}
    study_uptake = uptake_and_flat(low, brain)  # once for every rule
    for sigma, factor in grid:
        gain = np.maximum(weight, local_band_gain(low, band, brain, sigma, factor, study_uptake))
        outputs[rule_name(sigma, factor)] = resampled + gain * band
    return scored_rows(subject, drf, outputs, references, kinds, read_weight=weight)


def scored_rows(
    subject: str,
    drf: float,
    outputs: Mapping[str, np.ndarray],
    references: Any,
    kinds: Mapping[str, str] | None,
    **extra: Any,
) -> list[dict[str, Any]]:
    """One row per output ({rule: RAS volume on the study's grid}) of one study: its PSNR in the brain, each hot
    lesion's SUVmean, SUVmax and SUVpeak bias and each cold lesion's SUVmean bias against the full dose (lesions by the
    phantom's kind; a lesion the volume does not hold is left out), and the `extra` fields."""
    lesion_map = None if references.lesion is None else np.rint(references.lesion).astype(int)
    present = set() if lesion_map is None else {int(v) for v in np.unique(lesion_map) if v > 0}
    polarity = {int(k): KIND_POLARITY.get(v) for k, v in (kinds or {}).items() if int(k) in present}
    hot = [label for label, p in polarity.items() if p == "hot"]
    cold = [label for label, p in polarity.items() if p == "cold"]
    vox = references.voxel_size_mm
    full = {label: lesion_values(references.full, lesion_map == label, vox) for label in hot + cold}
    rows = []
    for rule, image in outputs.items():
        values = {label: lesion_values(image, lesion_map == label, vox) for label in hot + cold}
        rows.append(
            {
                "subject": subject,
                "drf": float(drf),
                "rule": rule,
                **extra,
                "psnr": masked_psnr(image, references.full, references.mask),
                "hot_suv_mean_bias_pct": [bias_pct(values[x]["suv_mean"], full[x]["suv_mean"]) for x in hot],
                "hot_suv_max_bias_pct": [bias_pct(values[x]["suv_max"], full[x]["suv_max"]) for x in hot],
                "hot_suv_peak_bias_pct": [bias_pct(values[x]["suv_peak"], full[x]["suv_peak"]) for x in hot],
                "cold_suv_mean_bias_pct": [bias_pct(values[x]["suv_mean"], full[x]["suv_mean"]) for x in cold],
            }
        )
    return rows


def lesion_mean(rows: Sequence[dict[str, Any]], key: str, transform: Callable[[float], float] = float) -> float:
    """The mean of `transform` over every lesion value `key` of `rows` (NaN when there is none)."""
    values = [transform(v) for r in rows for v in r.get(key, [])]
    return float(np.mean(values)) if values else float("nan")


def choose_rule(
    rows: Sequence[dict[str, Any]],
    allowance_db: float = PSNR_ALLOWANCE_DB,
    baseline: str = READ_GAIN,
    lesion_key: str = "hot_suv_max_bias_pct",
) -> str:
    """The rule of `rows` (one cohort) with the smallest mean |`lesion_key`| (hot SUVmax bias) at `LESION_DRFS` among
    those whose mean PSNR is at most `allowance_db` below the `baseline` rule's at every DRF; `baseline` when none is.
    """
    drfs = sorted({r["drf"] for r in rows})
    rules = [r for r in dict.fromkeys(x["rule"] for x in rows) if r != baseline]

    def mean_psnr(rule: str, drf: float) -> float:
        return float(np.mean([r["psnr"] for r in rows if r["rule"] == rule and r["drf"] == drf]))

    allowed = [rule for rule in rules if all(mean_psnr(rule, d) >= mean_psnr(baseline, d) - allowance_db for d in drfs)]
    if not allowed:
        return baseline

    def lesion_cost(rule: str) -> float:
        mine = [r for r in rows if r["rule"] == rule and r["drf"] in LESION_DRFS]
        return lesion_mean(mine, lesion_key, abs)

    return min(allowed, key=lesion_cost)


def summary_rows(
    rows: Sequence[dict[str, Any]],
    test_set: str,
    rule: str,
    baseline: str = READ_GAIN,
    names: tuple[str, str] = ("local", "read gain"),
) -> list[dict[str, str]]:
    """Per DRF: `rule` against the `baseline` rule (short `names`: rule's, baseline's): PSNR difference with its paired
    95 % CI, and the hot lesions' mean signed and absolute SUVmean, SUVmax and SUVpeak bias under each."""
    mine_name, base_name = names
    out = []
    for drf in sorted({r["drf"] for r in rows}):
        base = {r["subject"]: r for r in rows if r["drf"] == drf and r["rule"] == baseline}
        mine = {r["subject"]: r for r in rows if r["drf"] == drf and r["rule"] == rule}
        subjects = sorted(set(base) & set(mine))
        if len(subjects) < 2:
            continue
        cmp = paired_comparison([mine[s]["psnr"] for s in subjects], [base[s]["psnr"] for s in subjects])
        a, b = [base[s] for s in subjects], [mine[s] for s in subjects]

        def pair(key: str, transform: Callable[[float], float] = float, sign: str = "+") -> str:
            return f"{lesion_mean(a, key, transform):{sign}.1f} / {lesion_mean(b, key, transform):{sign}.1f}"

        out.append(
            {
                "test set": test_set,
                "DRF": f"{drf:g}",
                "n": str(len(subjects)),
                f"PSNR: {mine_name} - {base_name}, dB": (cmp.interval()),
                f"hot SUVmean bias %: {base_name} / {mine_name}": pair("hot_suv_mean_bias_pct"),
                "mean abs": pair("hot_suv_mean_bias_pct", abs, ""),
                f"hot SUVmax bias %: {base_name} / {mine_name}": pair("hot_suv_max_bias_pct"),
                "mean abs ": pair("hot_suv_max_bias_pct", abs, ""),
                f"hot SUVpeak bias %: {base_name} / {mine_name}": pair("hot_suv_peak_bias_pct"),
                "mean abs  ": pair("hot_suv_peak_bias_pct", abs, ""),
            }
        )
    return out
