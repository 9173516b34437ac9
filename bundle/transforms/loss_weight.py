"""Per-voxel loss weights from a lesion label map, for the lesion-weighted L1 (`losses.LesionWeightedL1Loss`).

- `LesionLossWeightd` (deterministic, cached): weight 1 + `weight` on every lesion voxel and on the `margin_mm`
  band around it (where a denoiser spills a lesion's uptake into its surroundings), 1 elsewhere, as `loss_weight`.
- `AppendLossWeightd`: the weight map (or, for `losses.LesionSUVConsistencyLoss`, the lesion map's ids themselves:
  `weight_key="lesion"`) appended to the label as a second channel and dropped from the item, after the dose level is
  drawn (so the label's scaling does not touch it) and before slices are sampled (so each slice keeps its own weights
  through the flips and transposes).

The lesion map is used only by the training loss, never as an input of the network.
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform
from scipy.ndimage import distance_transform_edt

from ..errors import ConfigValueError, InputDataError

__all__ = ["AppendLossWeightd", "LesionLossWeightd", "lesion_loss_weight"]


def lesion_loss_weight(
    lesions: np.ndarray, spacing_mm: tuple[float, ...], weight: float, margin_mm: float
) -> np.ndarray:
    """1 + `weight` within `margin_mm` of any lesion voxel (label > 0) of a 3D map, else 1 (float32)."""
    inside = np.asarray(lesions) > 0
    if not inside.any():
        return np.ones(inside.shape, dtype=np.float32)
    near = distance_transform_edt(~inside, sampling=spacing_mm) <= margin_mm
    return (1.0 + weight * near).astype(np.float32)


class LesionLossWeightd(MapTransform):
    """`loss_weight` (1, X, Y, Z) from the (1, X, Y, Z) lesion label map at `lesion_key`, which is removed."""

    def __init__(
        self, lesion_key: str = "lesion", weight: float = 5.0, margin_mm: float = 4.0, output_key: str = "loss_weight"
    ) -> None:
        super().__init__([lesion_key])
        if not weight >= 0:
            raise ConfigValueError(f"setting lesion_weight: expected >= 0, got {weight!r}")
        if not margin_mm >= 0:
            raise ConfigValueError(f"setting lesion_margin_mm: expected >= 0, got {margin_mm!r}")
        self.lesion_key, self.weight, self.margin_mm, self.output_key = lesion_key, weight, margin_mm, output_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.lesion_key not in d:
            raise InputDataError(
                f"subject {d.get('subject', '?')}: the lesion-weighted loss needs a '{self.lesion_key}' map in the "
                "datalist"
            )
        lesions = d.pop(self.lesion_key)
        spacing = tuple(float(s) for s in lesions.pixdim) if isinstance(lesions, MetaTensor) else (1.0, 1.0, 1.0)
        array = torch.as_tensor(lesions).cpu().numpy()
        weights = np.stack([lesion_loss_weight(c, spacing, self.weight, self.margin_mm) for c in array])
        d[self.output_key] = torch.from_numpy(weights)
        return d


class AppendLossWeightd(MapTransform):
    """`label` := cat(label, item[weight_key]) along channels; `weight_key` is removed from the item."""

    def __init__(self, label_key: str = "label", weight_key: str = "loss_weight") -> None:
        super().__init__([label_key, weight_key])
        self.label_key, self.weight_key = label_key, weight_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        weights = torch.as_tensor(d.pop(self.weight_key))
        label = d[self.label_key]
        if tuple(weights.shape[1:]) != tuple(label.shape[1:]):
            raise InputDataError(
                f"subject {d.get('subject', '?')}: lesion map shape {tuple(weights.shape[1:])} differs from the "
                f"label's {tuple(label.shape[1:])}"
            )
        d[self.label_key] = torch.cat([torch.as_tensor(label), weights.to(torch.as_tensor(label).dtype)], dim=0)
        return d
