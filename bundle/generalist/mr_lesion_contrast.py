"""What an MR cohort shows of each lesion kind: every lesion's mean T1 and FLAIR relative to the subject's white
matter (the median outside lesions), as the acquired MR gives them (noise, bias field, resolution and contrast
included), so that one can see which kinds an MR-guided network could tell apart from the MR alone."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..data import lesion_kinds, load_datalist
from ..errors import InputDataError
from ..io import load_ras_volume
from ..simulation.mr_imaging import WHITE_MATTER

__all__ = ["mr_contrast_by_lesion_kind"]


def mr_contrast_by_lesion_kind(datalist: str | Path, mr_keys: Sequence[str] = ("t1", "flair")) -> list[dict]:
    """One row per (lesion kind, MR key) of the cohort at `datalist`: the number of lesions and the mean, min and max
    over lesions of the lesion's mean intensity over its subject's white-matter median (tissue map, lesions left
    out)."""
    kinds_of, values = lesion_kinds(datalist), {}
    for item in load_datalist(datalist):
        missing = [key for key in ("lesion", "tissue", *mr_keys) if not item.get(key)]
        if missing:
            raise InputDataError(f"datalist {datalist}: subject {item['subject']} has no {missing}")
        lesions = load_ras_volume(item["lesion"]).astype(np.int64)
        white = (load_ras_volume(item["tissue"]).astype(np.int64) == WHITE_MATTER) & (lesions == 0)
        images = {key: load_ras_volume(item[key]) for key in mr_keys}
        references = {key: float(np.median(image[white])) for key, image in images.items()}
        for label, kind in kinds_of.get(item["subject"], {}).items():
            region = lesions == int(label)
            if region.any():
                for key, image in images.items():
                    values.setdefault((kind, key), []).append(float(image[region].mean()) / references[key])
    return [
        {"kind": kind, "channel": key, "n": len(v), "mean": float(np.mean(v)), "min": min(v), "max": max(v)}
        for (kind, key), v in sorted(values.items())
    ]
