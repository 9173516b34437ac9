"""Evaluation records: one method's evaluation of one subject at one dose level, indexed, with the getters the
tables pair over subjects."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..metrics import PairedComparison, paired_comparison

__all__ = [
    "REGIONS",
    "Getter",
    "Records",
    "evaluation_record",
    "finite",
    "lesions_of",
    "mean_abs_lesion_bias",
    "polarity",
    "region_psnr",
    "summary_metrics",
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


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def mean_abs_lesion_bias(key: str = "suv_mean_bias_pct", kind: str = "hot") -> Getter:
    """A record's mean |bias| over its lesions of polarity `kind` (None without such lesions)."""

    def get(record: dict[str, Any]) -> float | None:
        values = [abs(v[key]) for v in lesions_of(record, kind) if finite(v.get(key))]
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
        return {s: float(v) for s, v in out.items() if finite(v)}

    def paired(self, drf: float | None, a: str, b: str, get: Getter) -> PairedComparison | None:
        """A - B over the subjects with a finite value for both (None with fewer than two)."""
        va, vb = self.values(drf, a, get), self.values(drf, b, get)
        common = sorted(set(va) & set(vb))
        if len(common) < 2:
            return None
        return paired_comparison([va[s] for s in common], [vb[s] for s in common])


def summary_metrics(records: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Flat means for a tracking store: PSNR and hot-lesion SUVmean bias per method and dose level, e.g.
    `drf20_network_psnr_mean` and `drf20_network_hot_lesion_suv_mean_bias_pct_mean`."""
    table = Records(records)
    out = {}
    for drf in table.drfs:
        tag = "image" if drf is None else f"drf{drf:g}"
        for method in table.methods:
            mine = table.of(drf, method)
            if mine:
                out[f"{tag}_{method}_psnr_mean"] = float(np.mean([r["psnr"] for r in mine.values()]))
                hot = [v["suv_mean_bias_pct"] for r in mine.values() for v in lesions_of(r, "hot")]
                if hot:
                    out[f"{tag}_{method}_hot_lesion_suv_mean_bias_pct_mean"] = float(np.mean(hot))
    return out
