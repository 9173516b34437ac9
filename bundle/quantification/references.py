"""One subject's references for scoring (full-dose image, brain mask, lesion, phantom and tissue maps), loaded
once in RAS order, and the evaluation of any image of that subject against them with the one metric code
(`metrics.evaluate_volume`): what every study (the paper's, the generalist's) scores with."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..io import load_ras_volume
from ..metrics import evaluate_volume

__all__ = ["SubjectReferences"]


class SubjectReferences:
    """One subject's full-dose image, brain mask, lesion map, phantom and tissue map (RAS), loaded once."""

    def __init__(self, item: dict[str, Any]) -> None:
        import nibabel as nib

        from ..metrics import estimate_support_mask

        def load(key: str) -> Any:
            return load_ras_volume(item[key]) if item.get(key) else None

        self.full = load("label")
        mask = load("mask")
        self.mask = mask > 0.5 if mask is not None else estimate_support_mask(load("image"))
        self.lesion, self.truth, self.tissue = load("lesion"), load("truth"), load("tissue")
        if self.lesion is not None and not np.any(self.lesion > 0):
            self.lesion = None  # an all-zero map: a subject without lesions (as the evaluation workflow reads it)
        zooms = nib.as_closest_canonical(nib.load(item["label"])).header.get_zooms()[:3]
        self.voxel_size_mm = tuple(float(z) for z in zooms)

    def evaluate(self, image: Any) -> dict[str, Any]:
        return evaluate_volume(image, self.full, self.mask, self.voxel_size_mm, self.lesion, self.truth, self.tissue)
