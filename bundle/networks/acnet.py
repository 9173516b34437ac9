"""AC-Net: the auto-context CNN of Xiang et al. (Neurocomputing 2017), the paper's learned baseline.

    stage s (s = 1..3): 4 unpadded ("valid") 3x3 convolutions, 64 filters, ReLU between them,
                        the last one to a single output channel (the stage's full-dose estimate);
    stage 1 sees the input (low-dose PET, optionally with T1 as the original does);
    stage s > 1 sees the previous estimate and the input centre-cropped to the same size.

Every valid 3x3 convolution trims one pixel per side, so each stage trims 4 and three stages trim 12. The
input is padded by 12 pixels (reflection) first, so whole slices of the input's size come out.
In training mode the network returns every stage's estimate (for deep supervision, like the stage-wise
training of the original); in eval mode only the last.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .residual_unet import init_truncated_normal

__all__ = ["AutoContextNet"]


def _centre_crop(x: torch.Tensor, margin: int) -> torch.Tensor:
    if margin == 0:
        return x
    return x[..., margin:-margin, margin:-margin]


class AutoContextNet(nn.Module):
    """Auto-context CNN.

    Args:
        in_channels: input channels (1 for PET only, 2 for PET + T1).
        num_stages: auto-context stages (3).
        convs_per_stage: valid 3x3 convolutions per stage (4).
        features: filters of the hidden convolutions (64).
        deep_supervision: in training mode, return the list of every stage's estimate.
    """

    def __init__(
        self,
        in_channels: int = 2,
        num_stages: int = 3,
        convs_per_stage: int = 4,
        features: int = 64,
        deep_supervision: bool = True,
    ) -> None:
        super().__init__()
        if num_stages < 1 or convs_per_stage < 1 or in_channels < 1:
            raise ValueError("AC-Net: in_channels, num_stages and convs_per_stage must be >= 1")
        self.in_channels = in_channels
        self.trim = convs_per_stage  # pixels lost per side in one stage
        self.num_stages = num_stages
        self.deep_supervision = deep_supervision
        self.stages = nn.ModuleList()
        for s in range(num_stages):
            layers: list[nn.Module] = []
            channels = in_channels + (1 if s > 0 else 0)
            for i in range(convs_per_stage):
                last = i == convs_per_stage - 1
                layers.append(nn.Conv2d(channels, 1 if last else features, kernel_size=3, padding=0))
                if not last:
                    layers.append(nn.ReLU(inplace=True))
                channels = features
            self.stages.append(nn.Sequential(*layers))
        init_truncated_normal(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        total = self.trim * self.num_stages
        padded = F.pad(x, [total] * 4, mode="reflect")
        estimates: list[torch.Tensor] = []
        estimate = self.stages[0](padded)
        estimates.append(estimate)
        for s in range(1, self.num_stages):
            context = _centre_crop(padded, self.trim * s)
            estimate = self.stages[s](torch.cat([estimate, context], dim=1))
            estimates.append(estimate)
        # crop every stage's estimate to the input's size
        outputs = [_centre_crop(e, (e.shape[-1] - x.shape[-1]) // 2) for e in estimates]
        if self.training and self.deep_supervision:
            return outputs
        return outputs[-1]
