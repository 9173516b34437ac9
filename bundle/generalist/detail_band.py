"""How much of a study's sub-2 mm detail is worth keeping, measured against its full-dose image (issue 29).

Off the 2 mm training grid, inference outputs back(prediction) + w x band, with band = the study minus its round trip
through the 2 mm grid (`transforms.native_grid`), and w = 1 / (1 + DRF / detail_drf) fitted on our own simulator.
The best w for one study is the least-squares fit of its full-dose band by its low-dose band inside the brain:

    w* = <band_low, band_full> / <band_low, band_low>, clipped to [0, 1],

which is what a gain read from the study itself would have to find. Beside it, one such reading that needs no DRF:
w_flat = 1 - N / E, with E the mean square of the band (each voxel over the square root of the smoothed uptake, so
that Poisson-like noise is about stationary) over the brain and N the same over its flattest 30 % (the lowest
gradient of the smoothed image), where the band should hold noise alone.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..metrics.statistics import fit_line
from ..transforms.native_grid import flat_band_reading

__all__ = ["band_gains", "fit_reading_line", "grid_band"]


def grid_band(path: str, spacing: Sequence[float] = (2.0, 2.0, 2.0)) -> tuple[np.ndarray, np.ndarray]:
    """(the study's voxels, the study minus its bilinear round trip through `spacing`), in the file's own voxel order
    (RAS reorientation and the resampling are undone by MONAI's inverse, as inference's `Invertd` does)."""
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Orientationd, Spacingd

    loaded = EnsureChannelFirstd(keys="image")(LoadImaged(keys="image", image_only=True)({"image": str(path)}))
    native = np.asarray(loaded["image"][0], dtype=np.float64)
    resample = Compose(
        [
            Orientationd(keys="image", axcodes="RAS"),
            Spacingd(keys="image", pixdim=tuple(float(s) for s in spacing), mode="bilinear"),
        ]
    )
    on_grid = resample(loaded)
    back = np.asarray(resample.inverse({"image": on_grid["image"]})["image"][0], dtype=np.float64)
    if native.shape != back.shape:
        raise ValueError(f"{path}: the round trip returned {back.shape}, not the study's {native.shape}")
    return native, native - back


def band_gains(low: np.ndarray, band_low: np.ndarray, band_full: np.ndarray, brain: np.ndarray) -> dict[str, Any]:
    """{oracle: w*, flat: w_flat} of one study (arrays on its own grid; `brain` a boolean mask)."""
    bl, bf = band_low[brain], band_full[brain]
    energy = float(np.dot(bl, bl))
    oracle = float(np.clip(np.dot(bl, bf) / energy, 0.0, 1.0)) if energy > 0 else 1.0
    return {"oracle": oracle, "flat": flat_band_reading(low, band_low, brain)}


def fit_reading_line(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """w* = intercept + slope x w_flat, least squares over `records` (each with `oracle` and `flat`)."""
    if len(records) < 3:
        raise ValueError(f"the reading's line needs at least 3 studies, got {len(records)}")
    return fit_line([r["flat"] for r in records], [r["oracle"] for r in records])
