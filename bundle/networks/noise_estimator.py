"""A small fully convolutional network that reads a low-dose PET image's noise level from the image alone.

    input (B, S + 1, H, W): S adjacent axial slices, each divided by the volume's brain mean, and the centre slice's
      brain region (0/1) as the last channel
      -> fixed features: the centre slice, and the log2 local energy (Gaussian-weighted mean square, sigma 2
         voxels) of noise-dominated residuals: the centre slice minus its in-plane Gaussian smoothing (sigma 1 voxel),
         the in-plane bands between smoothings of sigma 1 and 2 and of 2 and 4 voxels (their ratios tell correlated
         noise, which a post-filter makes, from white noise and from anatomy), and the centre slice minus the mean
         of its axial neighbours
      -> 3x3 convolutions with dilations 1, 1, 2, 4, 8, 1 (receptive field 35 voxels), PReLU, no normalisation
         layer (the noise's amplitude relative to the brain mean is what is read)
      -> 1x1 convolution, added to the in-plane residual's log2 energy: the log2 local noise variance at every
         voxel (`noise_map`). The convolutions learn the correction that tells anatomy from noise, in the log
         domain, where a post-filter or a count level is a shift.
    output (B, 1): the slice's noise level, log2 of the RMS of the local noise inside the brain region
      = 0.5 log2(mean over the region of 2^map)

Trained on low-/full-dose pairs with the measured `metrics.relative_noise` of each slice as the target
(`noise_estimation.training`). A volume's level aggregates the maps of all its slices the same way
(`noise_estimation.volume_noise_log2`), so a slice and a volume are read on one scale.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution
from monai.networks.layers import GaussianFilter

__all__ = ["BAND_SIGMAS", "DILATIONS", "NoiseLevelNet"]

DILATIONS = (1, 1, 2, 4, 8, 1)
BAND_SIGMAS = (1.0, 2.0, 4.0)  # voxels: in-plane residual below 1, bands 1-2 and 2-4
ENERGY_FLOOR = 1e-8


class NoiseLevelNet(nn.Module):
    """Per-voxel log2 noise variance and per-slice noise level (see the module's description)."""

    def __init__(self, in_slices: int = 3, features: int = 24, dilations: tuple[int, ...] = DILATIONS) -> None:
        super().__init__()
        if in_slices < 3 or in_slices % 2 == 0:
            raise ValueError(f"in_slices: an odd number >= 3 is needed, got {in_slices}")
        self.in_slices = in_slices
        self.smoothings = nn.ModuleList(GaussianFilter(spatial_dims=2, sigma=s) for s in BAND_SIGMAS)
        self.energy = GaussianFilter(spatial_dims=2, sigma=2.0)
        layers, channels = [], len(BAND_SIGMAS) + 3
        for dilation in dilations:
            layers.append(
                Convolution(
                    spatial_dims=2,
                    in_channels=channels,
                    out_channels=features,
                    kernel_size=3,
                    dilation=dilation,
                    padding=dilation,
                    act="PRELU",
                    norm=None,
                )
            )
            channels = features
        head = Convolution(spatial_dims=2, in_channels=features, out_channels=1, kernel_size=1, conv_only=True)
        nn.init.zeros_(head.conv.weight)
        nn.init.zeros_(head.conv.bias)
        layers.append(head)
        self.correction = nn.Sequential(*layers)

    def _log_energy(self, residual: torch.Tensor) -> torch.Tensor:
        return torch.log2(self.energy(residual * residual) + ENERGY_FLOOR)

    def noise_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) log2 local noise variance."""
        c = self.in_slices // 2
        centre = x[:, c : c + 1]
        neighbours = 0.5 * (x[:, c - 1 : c] + x[:, c + 1 : c + 2])
        smooth = [centre] + [smoothing(centre) for smoothing in self.smoothings]
        bands = [self._log_energy(finer - coarser) for finer, coarser in zip(smooth[:-1], smooth[1:])]
        axial = self._log_energy(centre - neighbours)
        features = torch.cat([centre, *bands, axial, x[:, -1:]], dim=1)
        return bands[0] + self.correction(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1) log2 RMS noise of each slice inside its region (the last input channel)."""
        region = x[:, -1:]
        variance = torch.exp2(self.noise_map(x).clamp(-40.0, 10.0))
        mean = (variance * region).sum(dim=(1, 2, 3)) / region.sum(dim=(1, 2, 3)).clamp_min(1.0)
        return 0.5 * torch.log2(mean.clamp_min(1e-12))[:, None]
