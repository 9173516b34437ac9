"""Training losses: L1 (the paper's choice), L2, SSIM and MS-SSIM, selectable by name from the config."""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.losses import DeepSupervisionLoss, SSIMLoss
from monai.metrics.regression import compute_ms_ssim

from .errors import ConfigValueError

__all__ = ["LOSSES", "MultiScaleSSIMLoss", "image_loss"]

LOSSES = ("l1", "l2", "ssim", "ms-ssim")
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


def image_loss(name: str = "l1", data_range: float = 1.0, deep_supervision: bool = False) -> nn.Module:
    """The training loss by name: 'l1', 'l2', 'ssim' (MONAI SSIMLoss) or 'ms-ssim'.

    Images are normalised so that the low-dose 99.5th percentile is 1, hence `data_range` 1.
    `deep_supervision` wraps the loss for networks that return one output per stage (AC-Net).
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
    else:
        raise ConfigValueError(f"setting loss_name: expected one of {list(LOSSES)}, got {name!r}")
    return DeepSupervisionLoss(loss, weight_mode="same") if deep_supervision else loss
