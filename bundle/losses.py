"""Training losses: L1 (the paper's choice), L2, SSIM, MS-SSIM, an uptake-weighted L1 that protects hot regions, a
lesion-weighted L1 that protects the simulated lesions and the uptake-weighted L1 with a lesion SUV-consistency term,
selectable by name from the config; any of them can be noise-balanced (each sample's loss in units of its input's
own error)."""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.losses import DeepSupervisionLoss, SSIMLoss
from monai.metrics.regression import compute_ms_ssim

from .errors import ConfigValueError

__all__ = [
    "LESION_MAP_LOSSES",
    "LESION_WEIGHTED_LOSSES",
    "LOSSES",
    "LesionSUVConsistencyLoss",
    "LesionWeightedL1Loss",
    "MultiScaleSSIMLoss",
    "NoiseBalancedLoss",
    "UptakeLesionWeightedL1Loss",
    "UptakeWeightedL1Loss",
    "image_loss",
]

LOSSES = ("l1", "l2", "ssim", "ms-ssim", "uptake-l1", "lesion-l1", "uptake-lesion-l1", "uptake-l1-suv")
# the losses whose label carries one extra channel made from the training subject's lesion map
LESION_MAP_LOSSES = ("lesion-l1", "uptake-lesion-l1", "uptake-l1-suv")
# those whose extra channel is the lesion map turned into per-voxel loss weights (transforms.LesionLossWeightd)
LESION_WEIGHTED_LOSSES = ("lesion-l1", "uptake-lesion-l1")
# Wang et al. (2003) scale weights; the first three are used for patches too small for five scales
_MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


class MultiScaleSSIMLoss(nn.Module):
    """1 - MS-SSIM (MONAI's `compute_ms_ssim`), with as many scales as the image size allows."""

    def __init__(
        self, data_range: float = 1.0, kernel_size: int = 7, kernel_sigma: float = 1.5, max_scales: int = 5
    ) -> None:
        super().__init__()
        self.data_range = data_range
        self.kernel_size = kernel_size
        self.kernel_sigma = kernel_sigma
        self.max_scales = max_scales

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        smallest = min(pred.shape[2:])
        scales = self.max_scales
        while scales > 1 and smallest // 2 ** (scales - 1) < self.kernel_size:
            scales -= 1
        weights = torch.tensor(_MS_SSIM_WEIGHTS[:scales])
        weights = (weights / weights.sum()).tolist()
        value = compute_ms_ssim(
            pred.float(),
            target.float(),
            spatial_dims=2,
            data_range=self.data_range,
            kernel_type="gaussian",
            kernel_size=[self.kernel_size] * 2,
            kernel_sigma=[self.kernel_sigma] * 2,
            k1=0.01,
            k2=0.03,
            weights=weights,
        )
        return 1.0 - value.mean()


class UptakeWeightedL1Loss(nn.Module):
    """L1 with weight 1 + `weight` on high-uptake voxels of the target, ramped from `low` to `high` (target units:
    the input's 99.5th percentile is 1, so hot lesions and the hottest cortex lie above 0.8). It counts errors in
    lesion uptake (SUVmean, SUVmax) more than elsewhere without needing a lesion map."""

    def __init__(self, weight: float = 4.0, low: float = 0.8, high: float = 1.2) -> None:
        super().__init__()
        if weight < 0 or not high > low:
            raise ConfigValueError(f"setting uptake_weight: expected >= 0 with high > low, got {weight}, {low}, {high}")
        self.weight, self.low, self.high = float(weight), float(low), float(high)

    def uptake_ramp(self, target: torch.Tensor) -> torch.Tensor:
        """0 below `low`, 1 above `high`, linear between: how much of `weight` each voxel of `target` gets."""
        return ((target.float() - self.low) / (self.high - self.low)).clamp(0.0, 1.0)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weights = 1.0 + self.weight * self.uptake_ramp(target)
        return (weights * (pred.float() - target.float()).abs()).sum() / weights.sum()


def _split_label_channel(
    pred: torch.Tensor, target: torch.Tensor, loss_name: str, what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(full-dose target, extra channel) of a label that carries `what` as one channel after the target's; a label
    without it is refused in one line naming the loss."""
    channels = pred.shape[1]
    if target.shape[1] != channels + 1:
        raise ConfigValueError(
            f"loss {loss_name}: the label needs {what} as one extra channel (got {target.shape[1]} channels for a "
            f"{channels}-channel output); the profile does not append it"
        )
    return target[:, :channels], target[:, channels:]


class LesionWeightedL1Loss(nn.Module):
    """L1 weighted per voxel by the label's second channel (`transforms.LesionLossWeightd`: 1 + weight on and around
    each lesion, 1 elsewhere), normalised by the weights' sum; the first channel is the full-dose target."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        image, weights = _split_label_channel(pred, target, "lesion-l1", "the loss weights")
        error = (pred.float() - image.float()).abs()
        return (weights.float() * error).sum() / (weights.float().sum() * pred.shape[1])


class UptakeLesionWeightedL1Loss(nn.Module):
    """L1 weighted per voxel by the lesion weights of the label's second channel (`transforms.LesionLossWeightd`: 1
    + weight on and around each lesion of the map, whatever its uptake) plus `UptakeWeightedL1Loss`'s ramp on the
    target's high uptake, normalised by the weights' sum. The uptake term keeps hot lesions' counts without a map;
    the lesion term also weighs lesions of normal or low uptake, such as those only an MR input shows."""

    def __init__(self, uptake_weight: float = 4.0) -> None:
        super().__init__()
        self.uptake = UptakeWeightedL1Loss(weight=uptake_weight)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        image, lesion_weights = _split_label_channel(pred, target, "uptake-lesion-l1", "the loss weights")
        weights = lesion_weights.float() + self.uptake.weight * self.uptake.uptake_ramp(image)
        return (weights * (pred.float() - image.float()).abs()).sum() / weights.sum()


class LesionSUVConsistencyLoss(nn.Module):
    """Uptake-weighted L1 plus `suv_weight` x the mean relative error of each lesion's summed uptake.

    The label's last channel holds the lesion ids of the training subject's lesion map (0 outside lesions; appended by
    `transforms.AppendLossWeightd(weight_key="lesion")`). Each lesion's cross-section in each training slice with at
    least `min_voxels` voxels is one term |sum(pred) - sum(target)| / sum(target) over its voxels: the slice's
    SUVmean error of that lesion. The term constrains only the mean, so the network may keep the lesion's
    noise down, but not by spilling its uptake into the background. The lesion map is never an input of the network.
    """

    def __init__(self, suv_weight: float = 0.03, uptake_weight: float = 4.0, min_voxels: int = 4) -> None:
        super().__init__()
        if not suv_weight >= 0:
            raise ConfigValueError(f"setting suv_weight: expected >= 0, got {suv_weight!r}")
        if int(min_voxels) < 1:
            raise ConfigValueError(f"loss uptake-l1-suv: min_voxels must be >= 1, got {min_voxels!r}")
        self.suv_weight, self.min_voxels = float(suv_weight), int(min_voxels)
        self.uptake_l1 = UptakeWeightedL1Loss(weight=uptake_weight)

    def lesion_suv_errors(self, pred: torch.Tensor, target: torch.Tensor, lesion_ids: torch.Tensor) -> torch.Tensor:
        """|sum(pred) - sum(target)| / sum(target) per (sample, lesion id) cross-section of >= `min_voxels` voxels,
        averaged over the output channels (one value per cross-section; empty when no lesion is in the batch)."""
        ids = lesion_ids.round().long().clamp_min(0)
        count = int(ids.max().item()) + 1 if ids.numel() else 1
        batch = pred.shape[0]
        offset = (torch.arange(batch, device=ids.device) * count).view(batch, *([1] * (ids.ndim - 1)))
        index = (ids + offset).flatten()
        size = batch * count
        sums_pred = torch.zeros(size, device=pred.device).index_add(0, index, pred.float().mean(1, True).flatten())
        sums_target = torch.zeros(size, device=pred.device).index_add(0, index, target.float().mean(1, True).flatten())
        voxels = torch.zeros(size, device=pred.device).index_add(0, index, torch.ones_like(index, dtype=torch.float32))
        lesion = (torch.arange(size, device=pred.device) % count != 0) & (voxels >= self.min_voxels)
        lesion &= sums_target > 0
        return (sums_pred[lesion] - sums_target[lesion]).abs() / sums_target[lesion]

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        image, lesion_ids = _split_label_channel(pred, target, "uptake-l1-suv", "the lesion map")
        loss = self.uptake_l1(pred, image)
        errors = self.lesion_suv_errors(pred, image, lesion_ids)
        return loss + self.suv_weight * errors.mean() if errors.numel() else loss


class NoiseBalancedLoss(nn.Module):
    """`inner` per sample, times that sample's balance weight, averaged over the batch.

    The label's last channel is the weight, constant per sample (`transforms.AppendNoiseBalanceWeightd`: 1 / the
    input's own mean absolute error in the brain), so each sample's loss is in units of what its input leaves and a
    dose-blind network trained over DRF 2-200 cannot neglect the low doses, whose absolute errors are 10x smaller.
    The other channels go to `inner` unchanged.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.shape[1] < pred.shape[1] + 1:
            raise ConfigValueError(
                f"noise-balanced loss: the label needs its balance weight as its last channel (got {target.shape[1]} "
                f"channels for a {pred.shape[1]}-channel output); the profile does not append it"
            )
        rest, weights = target[:, :-1], target[:, -1:].float().flatten(1).mean(1)
        losses = [self.inner(pred[i : i + 1], rest[i : i + 1]) for i in range(pred.shape[0])]
        return (torch.stack(losses) * weights).mean()


def image_loss(
    name: str = "l1",
    data_range: float = 1.0,
    deep_supervision: bool = False,
    uptake_weight: float = 4.0,
    suv_weight: float = 0.03,
    noise_balanced: bool = False,
) -> nn.Module:
    """The training loss by name: 'l1', 'l2', 'ssim' (MONAI SSIMLoss), 'ms-ssim', 'uptake-l1'
    (`UptakeWeightedL1Loss` with `uptake_weight`), 'lesion-l1' (`LesionWeightedL1Loss`: the label carries the
    weights) or 'uptake-l1-suv' (`LesionSUVConsistencyLoss` with `suv_weight`: the label carries the lesion map).

    Images are normalised so that the low-dose 99.5th percentile is 1, hence `data_range` 1.
    `deep_supervision` wraps the loss for networks that return one output per stage (AC-Net); `noise_balanced`
    wraps it in `NoiseBalancedLoss` (the label then carries the balance weight as its last channel).
    """
    key = str(name).lower()
    if key == "l1":
        loss: nn.Module = nn.L1Loss()
    elif key in ("l2", "mse"):
        loss = nn.MSELoss()
    elif key == "ssim":
        loss = SSIMLoss(spatial_dims=2, data_range=data_range)
    elif key in ("ms-ssim", "msssim", "ms_ssim"):
        loss = MultiScaleSSIMLoss(data_range=data_range)
    elif key == "uptake-l1":
        loss = UptakeWeightedL1Loss(weight=uptake_weight)
    elif key == "lesion-l1":
        loss = LesionWeightedL1Loss()
    elif key == "uptake-lesion-l1":
        loss = UptakeLesionWeightedL1Loss(uptake_weight=uptake_weight)
    elif key == "uptake-l1-suv":
        loss = LesionSUVConsistencyLoss(suv_weight=suv_weight, uptake_weight=uptake_weight)
    else:
        raise ConfigValueError(f"setting loss_name: expected one of {list(LOSSES)}, got {name!r}")
    if noise_balanced:
        if deep_supervision:
            raise ConfigValueError("setting noise_balanced: not available with deep supervision (AC-Net)")
        loss = NoiseBalancedLoss(loss)
    return DeepSupervisionLoss(loss, weight_mode="same") if deep_supervision else loss
