"""Table rows from evaluation records: every dose level, lesion uptake (hot and cold, by kind), brain regions, and
paired comparisons of one method against the others."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..metrics import PairedComparison
from .records import REGIONS, SMALL_LESION_VOXELS, Records, finite, mean_abs_lesion_bias, polarity, region_psnr

__all__ = ["dose_rows", "drf_label", "lesion_kind_rows", "lesion_rows", "paired_rows", "regional_rows"]


def drf_label(drf: float | None) -> str:
    return "image" if drf is None else f"{drf:g}"


def _ci(c: PairedComparison | None, digits: int = 2) -> str:
    if c is None:
        return "n/a"
    return f"{c.mean_difference:+.{digits}f} ({c.ci_low:+.{digits}f} to {c.ci_high:+.{digits}f})"


def _mean(values: Iterable[float]) -> float:
    values = [v for v in values if finite(v)]
    return float(np.mean(values)) if values else float("nan")


def _psnr(r: dict[str, Any]) -> float:
    return r["psnr"]


def dose_rows(
    records: Records, methods: Sequence[str], input_method: str, reference: str, names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Per dose level and method: mean PSNR/NRMSE/SSIM, the paired PSNR gain over the input and over `reference`,
    the NRMSE as a fraction of the input's, and on how many subjects the method is worse than its input."""
    rows = []
    for drf in records.drfs:
        for m in [m for m in methods if records.of(drf, m)]:
            mine, given = records.of(drf, m), records.pairs(drf, m, input_method)
            rows.append(
                {
                    "DRF": drf_label(drf),
                    "method": names.get(m, m),
                    "PSNR": _mean(r["psnr"] for r in mine.values()),
                    "NRMSE": _mean(r["nrmse"] for r in mine.values()),
                    "SSIM": _mean(r["ssim"] for r in mine.values()),
                    "PSNR gain over input, dB (95 % CI)": (
                        "" if m == input_method else _ci(records.paired(drf, m, input_method, _psnr))
                    ),
                    f"over {names.get(reference, reference)}, dB (95 % CI)": (
                        "" if m == reference else _ci(records.paired(drf, m, reference, _psnr))
                    ),
                    "NRMSE / input": _mean(a["nrmse"] / b["nrmse"] for a, b in given.values()),
                    "worse than input": f"{sum(a['psnr'] < b['psnr'] for a, b in given.values())}/{len(given)}",
                }
            )
    return rows


def _lesions(records: Records, drf: float | None, method: str, keep: Callable[[dict], bool]) -> list[dict]:
    return [v for r in records.of(drf, method).values() for v in r["lesions"].values() if keep(v)]


def _size_matches(lesion: dict, small: bool | None) -> bool:
    return small is None or (float(lesion.get("voxels", 0)) < SMALL_LESION_VOXELS) == small


def _worst(values: Sequence[float]) -> float:
    values = [v for v in values if finite(v)]
    return max(values, key=abs) if values else float("nan")


def _lesion_summary(lesions: Sequence[dict]) -> dict[str, Any]:
    col = {k: [v.get(k) for v in lesions] for k in ("suv_mean_bias_pct", "suv_max_bias_pct", "suv_peak_bias_pct")}
    return {
        "lesions": len(lesions),
        "SUVmean bias %": _mean(col["suv_mean_bias_pct"]),
        "worst SUVmean %": _worst(col["suv_mean_bias_pct"]),
        "SUVmax bias %": _mean(col["suv_max_bias_pct"]),
        "worst SUVmax %": _worst(col["suv_max_bias_pct"]),
        "SUVpeak bias %": _mean(col["suv_peak_bias_pct"]),
        "contrast recovery": _mean(v.get("contrast_recovery") for v in lesions),
        "SUVmean vs phantom %": _mean(v.get("suv_mean_bias_pct_vs_truth", float("nan")) for v in lesions),
    }


def lesion_rows(
    records: Records,
    methods: Sequence[str],
    kind: str,
    names: Mapping[str, str],
    drfs: Sequence | None = None,
    small: bool | None = None,
) -> list[dict[str, Any]]:
    """Per dose level and method, over every lesion of polarity `kind` ('hot' or 'cold') of every subject (with
    `small`, only those under (True) or of at least (False) `SMALL_LESION_VOXELS` voxels): mean and worst (largest
    |bias|) SUVmean and SUVmax bias against the full dose, mean SUVpeak bias, contrast recovery, and the SUVmean bias
    against the phantom."""
    rows = []
    for drf in drfs if drfs is not None else records.drfs:
        for m in [m for m in methods if records.of(drf, m)]:
            lesions = _lesions(records, drf, m, lambda v: polarity(v) == kind and _size_matches(v, small))
            if lesions:
                rows.append({"DRF": drf_label(drf), "method": names.get(m, m), **_lesion_summary(lesions)})
    return rows


def lesion_kind_rows(
    records: Records, methods: Sequence[str], drf: float | None, names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """At one dose level, per lesion kind and method: the lesion summary of `lesion_rows`."""
    kinds = sorted({v["kind"] for m in methods for v in _lesions(records, drf, m, lambda v: True)})
    rows = []
    for kind in kinds:
        for m in [m for m in methods if records.of(drf, m)]:
            lesions = _lesions(records, drf, m, lambda v: v["kind"] == kind)
            rows.append({"kind": kind, "method": names.get(m, m), **_lesion_summary(lesions)})
    return rows


def regional_rows(
    records: Records, methods: Sequence[str], drf: float | None, names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """At one dose level, per method: mean PSNR in each brain region, in the paper's convention, the CV of pure white
    matter (which also reads the anatomy's texture) and its noise (SD of the error over the mean)."""
    rows = []
    for m in [m for m in methods if records.of(drf, m)]:
        mine = records.of(drf, m).values()
        row: dict[str, Any] = {"method": names.get(m, m), "whole brain": _mean(r["psnr"] for r in mine)}
        for region in REGIONS:
            if any(region in r["regions"] for r in mine):
                row[region.replace("_", " ")] = _mean(r["regions"].get(region, {}).get("psnr") for r in mine)
        row["paper convention"] = _mean(r["paper_convention"]["psnr"] for r in mine)
        row["white-matter CV"] = _mean(r.get("white_matter_cv") for r in mine)
        row["white-matter noise"] = _mean(r.get("white_matter_noise") for r in mine)
        rows.append(row)
    return rows


def paired_rows(
    records: Records, proposed: str, others: Sequence[str], names: Mapping[str, str], drfs: Sequence | None = None
) -> list[dict[str, Any]]:
    """`proposed` against each other method at each dose level, paired over subjects: PSNR (whole brain and
    interior), with wins and the sign test, and the mean |SUVmean bias| of hot lesions (lower is better)."""
    rows = []
    for drf in drfs if drfs is not None else records.drfs:
        for other in [o for o in others if records.of(drf, o) and records.of(drf, proposed)]:
            psnr = records.paired(drf, proposed, other, _psnr)
            if psnr is None:
                continue
            rows.append(
                {
                    "DRF": drf_label(drf),
                    "comparison": f"{names.get(proposed, proposed)} - {names.get(other, other)}",
                    "PSNR, dB (95 % CI)": _ci(psnr),
                    "better on": f"{psnr.wins}/{psnr.n}",
                    "sign test p": psnr.sign_test_p,
                    "interior PSNR, dB (95 % CI)": _ci(records.paired(drf, proposed, other, region_psnr("interior"))),
                    "hot-lesion abs SUVmean bias, % points (95 % CI)": _ci(
                        records.paired(drf, proposed, other, mean_abs_lesion_bias()), 1
                    ),
                }
            )
    return rows
