"""Dose, lesion and regional tables with paired statistics, from evaluation records: what a PET reader checks before
a global PSNR (does lesion uptake survive, does the method help at every dose level, where in the brain does it gain).

A record is one method's evaluation of one subject at one dose level:

    {"subject": "sub-001", "drf": 20.0, "method": "network", "nrmse": ..., "psnr": ..., "ssim": ...,
     "paper_convention": {"nrmse", "psnr", "ssim"}, "regions": {"interior": {"nrmse", "psnr", "voxels"}, ...},
     "lesions": {"1": {"kind", "suv_mean_bias_pct", "suv_max_bias_pct", "suv_peak_bias_pct", "contrast_recovery",
                       "reference_contrast", "suv_mean_bias_pct_vs_truth", ...}, ...},
     "white_matter_cv": ...}

(`evaluation_record` builds one from `metrics.evaluate_volume`). A lesion is hot or cold by the sign of its contrast
in the full-dose reference. Every comparison of two methods is paired over the subjects both were evaluated on: the
mean difference, its 95 % bootstrap interval and the sign test (`metrics.paired_comparison`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .metrics import PairedComparison, paired_comparison
from .tables import format_table

__all__ = [
    "Records",
    "dose_rows",
    "evaluation_record",
    "lesion_kind_rows",
    "lesion_rows",
    "lesions_of",
    "markdown_sections",
    "mean_abs_lesion_bias",
    "paired_rows",
    "polarity",
    "regional_rows",
]

REGIONS = ("interior", "edge", "grey_matter", "white_matter")
Getter = Callable[[dict[str, Any]], float | None]


def evaluation_record(
    subject: str, drf: float | None, method: str, result: Mapping[str, Any], kinds: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The record of `evaluate_volume`'s `result`, each lesion tagged with its kind (`kinds`: label -> kind)."""
    kinds = kinds or {}
    return {
        "subject": subject,
        "drf": None if drf is None else float(drf),
        "method": method,
        **{k: float(result[k]) for k in ("nrmse", "psnr", "ssim")},
        "paper_convention": dict(result["paper_convention"]),
        "regions": {name: dict(values) for name, values in result["regions"].items()},
        "lesions": {
            label: dict(values, kind=kinds.get(label, "lesion")) for label, values in result["lesions"].items()
        },
        "white_matter_cv": result.get("white_matter_cv"),
    }


def polarity(lesion: Mapping[str, Any]) -> str:
    """'hot' or 'cold' by the lesion's contrast in the reference ('unknown' without a background to compare with)."""
    contrast = lesion.get("reference_contrast")
    if contrast is None or not math.isfinite(contrast):
        return "unknown"
    return "hot" if contrast >= 0 else "cold"


def lesions_of(record: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    """A record's lesions of polarity `kind` ('hot' or 'cold')."""
    return [v for v in record["lesions"].values() if polarity(v) == kind]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def mean_abs_lesion_bias(key: str = "suv_mean_bias_pct", kind: str = "hot") -> Getter:
    """A record's mean |bias| over its lesions of polarity `kind` (None without such lesions)."""

    def get(record: dict[str, Any]) -> float | None:
        values = [abs(v[key]) for v in lesions_of(record, kind) if _finite(v.get(key))]
        return float(np.mean(values)) if values else None

    return get


def region_psnr(region: str) -> Getter:
    return lambda record: record["regions"].get(region, {}).get("psnr")


class Records:
    """Evaluation records indexed by (dose level, method, subject)."""

    def __init__(self, records: Iterable[dict[str, Any]]) -> None:
        self.index: dict[tuple, dict[str, Any]] = {}
        for r in records:
            self.index[(r["drf"], r["method"], r["subject"])] = r

    @property
    def drfs(self) -> list[float | None]:
        levels = {k[0] for k in self.index}
        return sorted((d for d in levels if d is not None)) + ([None] if None in levels else [])

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(k[1] for k in self.index))

    def of(self, drf: float | None, method: str) -> dict[str, dict[str, Any]]:
        """{subject: record} of one method at one dose level."""
        return {k[2]: r for k, r in self.index.items() if k[0] == drf and k[1] == method}

    def values(self, drf: float | None, method: str, get: Getter) -> dict[str, float]:
        out = {s: get(r) for s, r in self.of(drf, method).items()}
        return {s: float(v) for s, v in out.items() if _finite(v)}

    def paired(self, drf: float | None, a: str, b: str, get: Getter) -> PairedComparison | None:
        """A - B over the subjects with a finite value for both (None with fewer than two)."""
        va, vb = self.values(drf, a, get), self.values(drf, b, get)
        common = sorted(set(va) & set(vb))
        if len(common) < 2:
            return None
        return paired_comparison([va[s] for s in common], [vb[s] for s in common])


def drf_label(drf: float | None) -> str:
    return "image" if drf is None else f"{drf:g}"


def _ci(c: PairedComparison | None, digits: int = 2) -> str:
    if c is None:
        return "n/a"
    return f"{c.mean_difference:+.{digits}f} ({c.ci_low:+.{digits}f} to {c.ci_high:+.{digits}f})"


def _mean(values: Iterable[float]) -> float:
    values = [v for v in values if _finite(v)]
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
            mine, given = records.of(drf, m), records.of(drf, input_method)
            common = [s for s in mine if s in given]
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
                    "NRMSE / input": _mean(mine[s]["nrmse"] / given[s]["nrmse"] for s in common),
                    "worse than input": f"{sum(mine[s]['psnr'] < given[s]['psnr'] for s in common)}/{len(common)}",
                }
            )
    return rows


def _lesions(records: Records, drf: float | None, method: str, keep: Callable[[dict], bool]) -> list[dict]:
    return [v for r in records.of(drf, method).values() for v in r["lesions"].values() if keep(v)]


def _worst(values: Sequence[float]) -> float:
    values = [v for v in values if _finite(v)]
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
    records: Records, methods: Sequence[str], kind: str, names: Mapping[str, str], drfs: Sequence | None = None
) -> list[dict[str, Any]]:
    """Per dose level and method, over every lesion of polarity `kind` ('hot' or 'cold') of every subject: mean and
    worst (largest |bias|) SUVmean and SUVmax bias against the full dose, mean SUVpeak bias, contrast recovery, and
    the SUVmean bias against the phantom."""
    rows = []
    for drf in drfs if drfs is not None else records.drfs:
        for m in [m for m in methods if records.of(drf, m)]:
            lesions = _lesions(records, drf, m, lambda v: polarity(v) == kind)
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
    """At one dose level, per method: mean PSNR in each brain region, in the paper's convention, and the noise (CV)
    of uniform white matter."""
    rows = []
    for m in [m for m in methods if records.of(drf, m)]:
        mine = records.of(drf, m).values()
        row: dict[str, Any] = {"method": names.get(m, m), "whole brain": _mean(r["psnr"] for r in mine)}
        for region in REGIONS:
            if any(region in r["regions"] for r in mine):
                row[region.replace("_", " ")] = _mean(r["regions"].get(region, {}).get("psnr") for r in mine)
        row["paper convention"] = _mean(r["paper_convention"]["psnr"] for r in mine)
        row["white-matter CV"] = _mean(r.get("white_matter_cv") for r in mine)
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


def _section(title: str, intro: str, rows: list[dict[str, Any]]) -> list[str]:
    """A markdown section holding one table (nothing without rows)."""
    if not rows:
        return []
    return [title, "", *([intro, ""] if intro else []), format_table(rows, list(rows[0])), ""]


def markdown_sections(
    records: Records,
    methods: Sequence[str],
    input_method: str,
    reference: str,
    proposed: str,
    names: Mapping[str, str],
    detail_drfs: Sequence[float | None],
    heading: str = "###",
) -> list[str]:
    """The dose, lesion, regional and paired-statistics sections as markdown lines."""
    others = [m for m in methods if m != proposed]
    ref_name = names.get(reference, reference)
    lines = _section(
        f"{heading} Every dose level",
        "Mean over the test subjects; gains are paired over subjects (mean difference and 95 % bootstrap interval); "
        f"{ref_name} is tuned at each dose level on the training subjects only.",
        dose_rows(records, methods, input_method, reference, names),
    )
    for kind in ("hot", "cold"):
        lines += _section(
            f"{heading} Lesion uptake: {kind} lesions",
            "Bias against the full-dose image in percent, 100 x (method / full dose - 1), over every "
            f"{kind} lesion of every test subject; worst = the largest |bias|; SUVpeak is the PERCIST 1 mL "
            "sphere; contrast recovery 1 is perfect.",
            lesion_rows(records, methods, kind, names),
        )
    for drf in detail_drfs:
        lines += _section(
            f"{heading} Lesions by kind at DRF {drf_label(drf)}", "", lesion_kind_rows(records, methods, drf, names)
        )
    for drf in detail_drfs:
        lines += _section(
            f"{heading} Where in the brain, DRF {drf_label(drf)}",
            "Mean PSNR [dB] per region (interior: more than 6 mm inside the brain's edge; edge: the 6 mm band; "
            "the paper's convention: masked images over whole slices, for holding beside the paper's Table I) "
            "and the coefficient of variation of uniform white matter.",
            regional_rows(records, methods, drf, names),
        )
    lines += _section(
        f"{heading} Paired statistics: {names.get(proposed, proposed)} against every other method",
        "Differences over the same subjects (method on the left minus the right); for the lesion bias a negative "
        "difference means the left method keeps uptake better.",
        paired_rows(records, proposed, others, names),
    )
    return lines
