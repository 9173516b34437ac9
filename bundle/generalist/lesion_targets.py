"""Issue 31's lesion-uptake targets, measured on an evaluate_generalist report's records and marked met or not: hot
lesions' SUVmean and SUVmax bias per test set at DRF 100-200, per paper subject against the Gaussian and the
bilateral filter, small lesions against their noise floor, and the PSNR the candidate may give up against the
shipped model."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..quantification.records import Records, finite, labelled_lesions, lesions_of, mean_abs_lesion_bias
from .study import GAUSSIAN, INPUT, LOO_GAUSSIAN

__all__ = [
    "FloorKey",
    "PSNR_ALLOWANCE_DB",
    "SUV_MAX_LIMIT_PCT",
    "SUV_MEAN_LIMIT_PCT",
    "lesion_summary_rows",
    "lesion_target_rows",
    "noise_floor_index",
]

SUV_MEAN_LIMIT_PCT = {100.0: 5.0, 200.0: 8.0}  # mean |SUVmean bias| of hot lesions
SUV_MAX_LIMIT_PCT = 10.0  # mean |SUVmax bias| of hot lesions at DRF 100-200
PSNR_ALLOWANCE_DB = 0.2  # below the shipped model, at every DRF
SMALL_LESION_DRFS = (50.0, 100.0, 200.0)
FLOOR_SDS = 2.0
FloorKey = tuple[str, str, float, str]  # (test set, subject, DRF, lesion label)


def noise_floor_index(rows: Iterable[Mapping[str, Any]]) -> dict[FloorKey, float]:
    """{(test set, subject, DRF, label): SD of the lesion's SUVmean in %}, from the rows of
    `scripts/lesion_noise_floor.py`."""
    return {
        (r["test_set"], r["subject"], float(r["drf"]), str(r["label"])): float(r["suv_mean_sd_pct"])
        for r in rows
        if finite(r.get("suv_mean_sd_pct"))
    }


def _by_set(records: Iterable[dict[str, Any]]) -> dict[str, Records]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        grouped[r["test_set"]].append(r)
    return {name: Records(rs) for name, rs in grouped.items()}


def _hot(table: Records, drf: float, method: str, key: str, small: bool | None = None) -> list[float]:
    return [
        float(v[key]) for r in table.of(drf, method).values() for v in lesions_of(r, "hot", small) if finite(v.get(key))
    ]


def _mean_abs(values: Sequence[float]) -> float:
    return float(np.mean(np.abs(values))) if values else float("nan")


def _difference(comparison: Any, digits: int) -> str:
    """A paired comparison as 'mean (low to high)', or '-' where there is none."""
    if comparison is None:
        return "-"
    c, d = comparison, digits
    return f"{c.mean_difference:+.{d}f} ({c.ci_low:+.{d}f} to {c.ci_high:+.{d}f})"


def _signed_mean(values: Sequence[float]) -> str:
    return f"{np.mean(values):+.1f}" if values else "-"


def _row(target: str, test_set: str, drf: float, measured: str, met: bool | None) -> dict[str, Any]:
    verdict = "n/a" if met is None else ("met" if met else "**not met**")
    return {"target": target, "test set": test_set, "DRF": f"{drf:g}", "measured": measured, "": verdict}


def _small_lesions_against_floor(
    table: Records, test_set: str, drf: float, method: str, floors: Mapping[FloorKey, float]
) -> tuple[list[float], list[float]]:
    """The biases and noise-floor SDs of the small hot lesions that have a floor."""
    biases, sds = [], []
    for subject, record in table.of(drf, method).items():
        name = subject.split("/")[-1]
        for label, v in labelled_lesions(record, "hot", small=True):
            sd = floors.get((test_set, name, float(drf), label))
            if sd is not None and finite(v.get("suv_mean_bias_pct")):
                biases.append(float(v["suv_mean_bias_pct"]))
                sds.append(sd)
    return biases, sds


def lesion_target_rows(
    records: Iterable[dict[str, Any]],
    method: str,
    shipped: str,
    floors: Mapping[FloorKey, float] | None = None,
    filters: Sequence[str] = (GAUSSIAN, "bilateral"),
) -> list[dict[str, Any]]:
    """One row per issue-31 target, test set and dose level for `method`: what was measured and whether it is met."""
    rows: list[dict[str, Any]] = []
    floors = floors or {}
    getter = mean_abs_lesion_bias()
    for test_set, table in _by_set(records).items():
        drfs = [d for d in table.drfs if d is not None and table.of(d, method)]
        for drf in drfs:
            if drf in SUV_MEAN_LIMIT_PCT:
                mean_bias = _hot(table, drf, method, "suv_mean_bias_pct")
                limit = SUV_MEAN_LIMIT_PCT[drf]
                if mean_bias:
                    abs_mean = _mean_abs(mean_bias)
                    text = f"{abs_mean:.1f} % (mean {np.mean(mean_bias):+.1f} %, {len(mean_bias)} lesions)"
                    rows.append(
                        _row(
                            f"hot lesions: mean abs SUVmean bias <= {limit:g} %", test_set, drf, text, abs_mean <= limit
                        )
                    )
                max_bias = _hot(table, drf, method, "suv_max_bias_pct")
                if max_bias:
                    abs_max = _mean_abs(max_bias)
                    text = f"{abs_max:.1f} % (mean {np.mean(max_bias):+.1f} %)"
                    rows.append(
                        _row(
                            f"hot lesions: mean abs SUVmax bias <= {SUV_MAX_LIMIT_PCT:g} %",
                            test_set,
                            drf,
                            text,
                            abs_max <= SUV_MAX_LIMIT_PCT,
                        )
                    )
                if test_set == "paper":
                    for other in filters:
                        pairs = [(getter(a), getter(b)) for a, b in table.pairs(drf, method, other).values()]
                        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
                        if not pairs:
                            continue
                        below = sum(a < b for a, b in pairs)
                        rows.append(
                            _row(
                                f"per subject: mean abs SUVmean bias below {other}'s on >= 8 of 9",
                                test_set,
                                drf,
                                f"{below}/{len(pairs)}",
                                below >= 8 if len(pairs) >= 9 else None,
                            )
                        )
            if drf in SMALL_LESION_DRFS:
                biases, sds = _small_lesions_against_floor(table, test_set, drf, method, floors)
                if biases:
                    mean, floor = float(np.mean(biases)), float(np.mean(sds))
                    inside = sum(abs(b) <= FLOOR_SDS * s for b, s in zip(biases, sds))
                    rows.append(
                        _row(
                            f"hot lesions under 100 voxels: mean bias within {FLOOR_SDS:g} SD of their noise floor",
                            test_set,
                            drf,
                            f"{mean:+.1f} % against SD {floor:.1f} % ({len(biases)} lesions; {inside} each within)",
                            abs(mean) <= FLOOR_SDS * floor,
                        )
                    )
            versus = table.paired(drf, method, shipped, lambda r: r["psnr"]) if method != shipped else None
            if versus is not None:
                rows.append(
                    _row(
                        f"PSNR no more than {PSNR_ALLOWANCE_DB:g} dB below {shipped}",
                        test_set,
                        drf,
                        versus.interval(" dB"),
                        versus.mean_difference >= -PSNR_ALLOWANCE_DB,
                    )
                )
            pairs = list(table.pairs(drf, method, INPUT).values())
            if pairs:
                worse = sum(not (a["psnr"] >= b["psnr"] and a["nrmse"] < b["nrmse"]) for a, b in pairs)
                rows.append(
                    _row("never worse than the input", test_set, drf, f"worse on {worse}/{len(pairs)}", worse == 0)
                )
    return rows


def lesion_summary_rows(
    records: Iterable[dict[str, Any]], methods: Sequence[str], shipped: str
) -> list[dict[str, Any]]:
    """Per test set, DRF and method (the input, the Gaussians, the other baselines, `shipped`, then `methods`): mean
    PSNR and its paired difference from `shipped` (95 % bootstrap CI), the hot lesions' mean SUVmean / SUVmax /
    SUVpeak bias, those under 100 voxels apart, and the paired difference of the per-subject mean abs SUVmean bias
    from `shipped`'s."""
    rows = []
    getter = mean_abs_lesion_bias()
    for test_set, table in _by_set(records).items():
        for drf in [d for d in table.drfs if d is not None]:
            others = [m for m in table.methods if m not in (INPUT, LOO_GAUSSIAN, GAUSSIAN, shipped, *methods)]
            for method in dict.fromkeys((INPUT, LOO_GAUSSIAN, GAUSSIAN, *others, shipped, *methods)):
                mine = table.of(drf, method)
                if not mine:
                    continue
                psnr_gap = table.paired(drf, method, shipped, lambda r: r["psnr"]) if method != shipped else None
                bias_gap = table.paired(drf, method, shipped, getter) if method != shipped else None

                rows.append(
                    {
                        "test set": test_set,
                        "DRF": f"{drf:g}",
                        "method": method,
                        "PSNR": f"{np.mean([r['psnr'] for r in mine.values()]):.2f}",
                        f"PSNR - {shipped}": _difference(psnr_gap, 2),
                        "hot SUVmean / max / peak %": " / ".join(
                            _signed_mean(_hot(table, drf, method, k))
                            for k in ("suv_mean_bias_pct", "suv_max_bias_pct", "suv_peak_bias_pct")
                        ),
                        "small hot SUVmean %": _signed_mean(_hot(table, drf, method, "suv_mean_bias_pct", small=True)),
                        f"abs SUVmean bias - {shipped}": _difference(bias_gap, 1),
                    }
                )
    return rows
