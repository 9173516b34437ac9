"""Per-voxel loss weights from a lesion label map, for the lesion-weighted L1 (`losses.LesionWeightedL1Loss`).

- `LesionLossWeightd` (deterministic, cached): weight 1 + `weight` on every lesion voxel and on the `margin_mm`
  band around it (where a denoiser spills a lesion's uptake into its surroundings), 1 elsewhere, as `loss_weight`.
- `AppendLossWeightd`: the weight map (or, for `losses.LesionSUVConsistencyLoss`, the lesion map's ids themselves:
  `weight_key="lesion"`) appended to the label as a second channel and dropped from the item, after the dose level is
  drawn (so the label's scaling does not touch it) and before slices are sampled (so each slice keeps its own weights
  through the flips and transposes).
- `AppendNoiseBalanceWeightd`: after the dose level is drawn, a constant last label channel 1 / (the input's own mean
  absolute error in the brain), for `losses.NoiseBalancedLoss`: each draw's loss in units of what the input leaves,
  so that a DRF-2 draw counts as much as a DRF-200 one.

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

__all__ = ["AppendLossWeightd", "AppendNoiseBalanceWeightd", "LesionLossWeightd", "lesion_loss_weight"]


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


class AppendNoiseBalanceWeightd(MapTransform):
    """`label` := cat(label, a constant channel 1 / e), e = mean |image - label[:1]| over the brain `mask` of the
    drawn dose level (both already divided by its percentile scale): the input's own L1 error, so a loss multiplied
    by it reads as the fraction of the input's error left. Apply it after `RandDoseLeveld` and after any other
    channel is appended (it must be the label's last)."""

    def __init__(
        self, image_key: str = "image", label_key: str = "label", mask_key: str = "mask", floor: float = 1e-4
    ) -> None:
        super().__init__([image_key, label_key])
        if not floor > 0:
            raise ConfigValueError(f"setting noise_balance_floor: expected > 0, got {floor!r}")
        self.image_key, self.label_key, self.mask_key, self.floor = image_key, label_key, mask_key, float(floor)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        subject = d.get("subject", "?")
        if self.mask_key not in d:
            raise InputDataError(f"subject {subject}: the noise-balanced loss needs a '{self.mask_key}' brain mask")
        label = torch.as_tensor(d[self.label_key])
        image = torch.as_tensor(d[self.image_key])[:1].float()
        brain = torch.as_tensor(d[self.mask_key])[:1] > 0.5
        if tuple(brain.shape) != tuple(image.shape) or tuple(label.shape[1:]) != tuple(image.shape[1:]):
            raise InputDataError(
                f"subject {subject}: image {tuple(image.shape[1:])}, label {tuple(label.shape[1:])} and mask "
                f"{tuple(brain.shape[1:])} differ in shape"
            )
        if not bool(brain.any()):
            raise InputDataError(f"subject {subject}: the brain mask '{self.mask_key}' is empty")
        error = float((image - label[:1].float()).abs()[brain].mean())
        balance = torch.full_like(label[:1], 1.0 / max(error, self.floor))
        d[self.label_key] = torch.cat([label, balance], dim=0)
        return d
