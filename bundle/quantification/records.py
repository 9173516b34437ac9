"""Evaluation records: one method's evaluation of one subject at one dose level, indexed, with the getters the
tables pair over subjects."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..metrics import PairedComparison, paired_comparison

__all__ = [
    "KIND_POLARITY",
    "REGIONS",
    "SMALL_LESION_VOXELS",
    "Getter",
    "Records",
    "evaluation_record",
    "finite",
    "labelled_lesions",
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
        "white_matter_noise": result.get("white_matter_noise"),
    }


KIND_POLARITY = {
    "enhancing_rim": "hot",
    "hot_nodule": "hot",
    "pet_only": "hot",
    "ring_enhancing": "hot",
    "necrotic_core": "cold",  # inside a hot rim: its bias is the rim's spill-in (cold fill-in)
    "cold": "cold",
    "mr_only": "none",  # an MR lesion with normal PET uptake (simulate_mr): in neither table; any bias is invented
}
"""The polarity of the phantoms' lesion kinds (both simulators'), which decides a lesion's table."""
SMALL_LESION_VOXELS = 100  # about 0.8 mL at 2 mm: a lesion this small gets its own rows


def polarity(lesion: Mapping[str, Any]) -> str:
    """'hot', 'cold' or 'none' (normal uptake): by the lesion's kind where the phantom names it (`KIND_POLARITY`: a necrotic core is cold
    even where its rim's spill-in makes it brighter than its background), else by the sign of its contrast in the
    reference ('unknown' without a background to compare with)."""
    if lesion.get("kind") in KIND_POLARITY:
        return KIND_POLARITY[lesion["kind"]]
    contrast = lesion.get("reference_contrast")
    if contrast is None or not math.isfinite(contrast):
        return "unknown"
    return "hot" if contrast >= 0 else "cold"


def labelled_lesions(
    record: Mapping[str, Any], kind: str, small: bool | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(label, lesion) for a record's lesions of polarity `kind` ('hot' or 'cold'); with `small`, only those under
    (True) or of at least (False) `SMALL_LESION_VOXELS` voxels."""
    out = [(str(label), v) for label, v in record["lesions"].items() if polarity(v) == kind]
    if small is not None:
        out = [(label, v) for label, v in out if (float(v.get("voxels", 0)) < SMALL_LESION_VOXELS) == small]
    return out


def lesions_of(record: Mapping[str, Any], kind: str, small: bool | None = None) -> list[dict[str, Any]]:
    """A record's lesions of polarity `kind`, as `labelled_lesions` selects them, without their labels."""
    return [v for _, v in labelled_lesions(record, kind, small)]


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
    """Evaluation records indexed by (dose level, method, subject).

    A record may carry `data`: the name of the simulated data it was scored on when that differs from this run's
    (records reused from another machine whose simulation drew other noise). Each (dose level, method, subject) shows
    this run's record where there is one; pairs are formed only between records of the same data, so a reused
    method is compared with the input and the other methods as they were on its own data. A `pairing_only` record
    (another method on that other data) is never shown, only paired with.
    """

    def __init__(self, records: Iterable[dict[str, Any]]) -> None:
        self.index: dict[tuple, dict[str, Any]] = {}
        self.by_data: dict[tuple, dict[str, Any]] = {}
        for r in records:
            key = (r["drf"], r["method"], r["subject"])
            self.by_data[(*key, r.get("data"))] = r
            if r.get("pairing_only"):
                continue
            shown = self.index.get(key)
            if r.get("data") is None or shown is None or shown.get("data") is not None:  # this run's record wins
                self.index[key] = r

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

    def pair(self, drf: float | None, a: str, b: str, subject: str) -> tuple[dict, dict] | None:
        """The records of `a` and `b` for one subject scored on the same data (`a`'s shown data first), or None."""
        ra, rb = self.index.get((drf, a, subject)), self.index.get((drf, b, subject))
        if ra is None or rb is None:
            return None
        for data in dict.fromkeys((ra.get("data"), rb.get("data"))):
            pa, pb = self.by_data.get((drf, a, subject, data)), self.by_data.get((drf, b, subject, data))
            if pa is not None and pb is not None:
                return pa, pb
        return None

    def pairs(self, drf: float | None, a: str, b: str) -> dict[str, tuple[dict, dict]]:
        """{subject: (record of a, record of b)} over the subjects where both were scored on the same data."""
        out = {s: self.pair(drf, a, b, s) for s in self.of(drf, a)}
        return {s: p for s, p in out.items() if p is not None}

    def paired(self, drf: float | None, a: str, b: str, get: Getter) -> PairedComparison | None:
        """A - B over the subjects with a finite value for both on the same data (None with fewer than two)."""
        values = [(get(ra), get(rb)) for ra, rb in self.pairs(drf, a, b).values()]
        values = [(float(x), float(y)) for x, y in values if finite(x) and finite(y)]
        if len(values) < 2:
            return None
        return paired_comparison([x for x, _ in values], [y for _, y in values])


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
