"""The generalist model's targets (issue 16), each measured on the records and marked met or not."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..quantification.records import Records, lesions_of, mean_abs_lesion_bias, region_psnr
from .study import GAUSSIAN, INPUT

__all__ = ["TARGET_SET", "side_by_side_rows", "target_rows"]


def _psnr(r: dict[str, Any]) -> float:
    return r["psnr"]


def _lesion_biases(records: Records, drf: float, method: str, key: str) -> tuple[float, float]:
    """(mean |bias|, mean bias) over every hot lesion of every subject."""
    values = [v[key] for r in records.of(drf, method).values() for v in lesions_of(r, "hot")]
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(np.abs(values))), float(np.mean(values))


def _row(target: str, drf: float | str, measured: str, met: bool | None) -> dict[str, Any]:
    verdict = "n/a" if met is None else ("met" if met else "**not met**")
    return {"target": target, "DRF": drf if isinstance(drf, str) else f"{drf:g}", "measured": measured, "": verdict}


TARGET_SET = "new-anatomy"  # the other test set whose margin the target is about


def target_rows(
    paper: Records, others: Mapping[str, Records], method: str, drfs: Sequence[float], reference: str = GAUSSIAN
) -> list[dict]:
    """One row per target and dose level: what was measured and whether the target is met (the Gaussian targets
    against `reference`). `others` are the other test sets by name: every one counts for "never worse than the input";
    each one's margin over the Gaussian is compared with the paper subjects' (a target for `TARGET_SET`, shown
    against the same 0.3 dB for the others)."""
    rows = []
    sets = [("paper", paper), *others.items()]
    for drf in drfs:
        pairs = [p for _, records in sets for p in records.pairs(drf, method, INPUT).values()]
        if not pairs:
            continue
        worse = sum(not (mine["psnr"] >= given["psnr"] and mine["nrmse"] < given["nrmse"]) for mine, given in pairs)
        lowest = min(mine["psnr"] - given["psnr"] for mine, given in pairs)
        rows.append(
            _row(
                "never worse than the input (PSNR and NRMSE), every test subject",
                drf,
                f"worse on {worse}/{len(pairs)}; smallest gain {lowest:+.2f} dB",
                worse == 0,
            )
        )
    for drf in drfs:
        margin = paper.paired(drf, method, reference, _psnr)
        need = 1.5 if drf == 200 else (1.0 if 10 <= drf <= 100 else None)
        if margin is not None:
            text = margin.interval(" dB")
            rows.append(
                _row(
                    f"PSNR - tuned Gaussian >= {need} dB" if need else "PSNR - tuned Gaussian",
                    drf,
                    text,
                    None if need is None else margin.mean_difference >= need,
                )
            )
        for name, records in others.items():
            other = records.paired(drf, method, reference, _psnr)
            if margin is not None and other is not None:
                gap = other.mean_difference - margin.mean_difference
                rows.append(
                    _row(
                        f"{name} margin within 0.3 dB of the paper subjects'"
                        + ("" if name == TARGET_SET else " (not an issue target)"),
                        drf,
                        f"{other.mean_difference:+.2f} vs {margin.mean_difference:+.2f} dB (difference {gap:+.2f})",
                        gap >= -0.3 if name == TARGET_SET else None,
                    )
                )
    for drf in drfs:
        suv_mean, signed_mean = _lesion_biases(paper, drf, method, "suv_mean_bias_pct")
        suv_max, signed_max = _lesion_biases(paper, drf, method, "suv_max_bias_pct")
        if drf <= 50:
            rows.append(
                _row(
                    "hot lesions: mean |SUVmean bias| <= 5 %, |SUVmax bias| <= 10 %",
                    drf,
                    f"{suv_mean:.1f} %, {suv_max:.1f} % (mean bias {signed_mean:+.1f} %, {signed_max:+.1f} %)",
                    suv_mean <= 5 and suv_max <= 10,
                )
            )
        else:
            getter = mean_abs_lesion_bias()
            values = [(getter(a), getter(b)) for a, b in paper.pairs(drf, method, reference).values()]
            pairs = [(a, b) for a, b in values if a is not None and b is not None]  # subjects with hot lesions
            below = sum(a < b for a, b in pairs)
            rows.append(
                _row(
                    "hot lesions: mean |SUVmean bias| <= 8 % and below the Gaussian's on >= 8 of 9",
                    drf,
                    f"{suv_mean:.1f} % (mean bias {signed_mean:+.1f} %); below on {below}/{len(pairs)}",
                    suv_mean <= 8 and below >= 8,
                )
            )
    if 200.0 in [float(d) for d in drfs]:
        interior = paper.paired(200.0, method, reference, region_psnr("interior"))
        if interior is not None:
            rows.append(
                _row(
                    "interior PSNR - tuned Gaussian >= +1.0 dB",
                    200.0,
                    interior.interval(" dB"),
                    interior.mean_difference >= 1.0,
                )
            )
    return rows


def side_by_side_rows(
    paper: Records, methods: Sequence[str], drfs: Sequence[float], names: Mapping[str, str], reference: str = GAUSSIAN
) -> list[dict]:
    """Per dose level, the input, the tuned Gaussian and each method: margin over the Gaussian (paired 95 % CI) next
    to the hot-lesion uptake bias on the paper subjects, the numbers the targets judge, for every run at once. The
    input's lesion error is what an unbiased method carries from the counts alone."""
    rows = []
    getter = mean_abs_lesion_bias()
    for drf in drfs:
        for method in (INPUT, reference, *methods):
            if not paper.of(drf, method):
                continue
            suv_mean, signed_mean = _lesion_biases(paper, drf, method, "suv_mean_bias_pct")
            suv_max, _ = _lesion_biases(paper, drf, method, "suv_max_bias_pct")
            if method == reference:
                margin_text, below = "reference", "-"
            else:
                margin = paper.paired(drf, method, reference, _psnr)
                if margin is None:
                    continue
                margin_text = margin.interval()
                pairs = paper.pairs(drf, method, reference).values()
                below = f"{sum(getter(a) < getter(b) for a, b in pairs)}/{margin.n}"
            rows.append(
                {
                    "DRF": f"{drf:g}",
                    "method": names.get(method, method),
                    "PSNR - reference Gaussian, dB (95 % CI)": margin_text,
                    "hot-lesion mean abs SUVmean bias %": f"{suv_mean:.1f}",
                    "mean SUVmean bias %": f"{signed_mean:+.1f}",
                    "hot-lesion mean abs SUVmax bias %": f"{suv_max:.1f}",
                    "subjects with lower lesion bias than the reference": below,
                }
            )
    return rows
