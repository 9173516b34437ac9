"""The 2.5D residual encoder-decoder of Xu et al. (2017), built from MONAI blocks.

    input (B, in_slices + extra_channels, H, W): adjacent axial low-dose slices, centre slice in the middle
      -> encoder: np stages of nc x (3x3 conv, batch norm, ReLU), each followed by 2x2 max pooling;
         widths base, 2 base, 4 base, ...
      -> bottleneck: nc x (3x3 conv, BN, ReLU) at twice the last encoder width
      -> decoder: np stages of bilinear x2 upsampling, concatenation with the matching encoder output
         (concatenate skip), nc x (3x3 conv, BN, ReLU)
      -> 1x1 conv to the output channels
      -> + the centre input slice (residual connection): the network learns full dose minus low dose.

Inputs whose height or width is not a multiple of 2^np are padded (edge replication) and cropped back.

Dose conditioning (`dose_conditioning=True`): the last input channel is a constant map of the dose code (see
`transforms.dose.dose_code`); a small MLP turns it into a feature-wise scale and shift (FiLM, Perez et al. 2018) of
every stage's output. The last MLP layer starts at zero, so an untrained conditioned network is the plain one.

Gated guide channels (`guide_channels=k > 0`, for an MR given beside the PET): the last k convolved input channels
(after the PET slices, before the dose code) are multiplied, pixel by pixel, by a gate in (0, 1) that a small
convolutional branch computes from all convolved inputs (PET and guide together), so the network can shut the MR out
where it disagrees with the PET (a lesion the MR shows and the PET does not). The gate starts nearly open (0.95).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution, UpSample
from monai.networks.layers.factories import Act, Norm

__all__ = ["DoseFiLM", "GuideGate", "ResidualUNet2p5D", "init_truncated_normal"]


def init_truncated_normal(module: nn.Module, std: float = 0.02) -> None:
    """Conv weights ~ truncated normal(0, std) cut at 2 std (as TensorFlow's), biases zero."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class _Stage(nn.Sequential):
    """nc x (3x3 conv, batch norm, ReLU)."""

    def __init__(self, in_channels: int, out_channels: int, num_convs: int) -> None:
        layers = []
        for i in range(num_convs):
            layers.append(
                Convolution(
                    spatial_dims=2,
                    in_channels=in_channels if i == 0 else out_channels,
                    out_channels=out_channels,
                    kernel_size=3,
                    act=Act.RELU,
                    norm=Norm.BATCH,
                    adn_ordering="NA",
                )
            )
        super().__init__(*layers)


class DoseFiLM(nn.Module):
    """Per-stage feature-wise scale and shift from a scalar code: (B,) -> one (gamma, beta) pair per width."""

    def __init__(self, widths: list[int], hidden: int = 32) -> None:
        super().__init__()
        self.widths = list(widths)
        self.mlp = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, 2 * sum(self.widths)))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, code: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        params = self.mlp(code.reshape(-1, 1).float())
        out: list[tuple[torch.Tensor, torch.Tensor]] = []
        start = 0
        for width in self.widths:
            gamma = params[:, start : start + width, None, None]
            beta = params[:, start + width : start + 2 * width, None, None]
            out.append((gamma, beta))
            start += 2 * width
        return out


class GuideGate(nn.Module):
    """(B, C, H, W) inputs whose last `guide_channels` are a guide image (MR) -> the same inputs with the guide
    multiplied by a per-pixel gate sigmoid(conv3x3(ReLU(conv3x3(inputs)))) in (0, 1), one gate per guide channel.
    The last convolution starts at weight zero and bias `open_bias`, so an untrained gate passes 95 % of the guide."""

    def __init__(self, in_channels: int, guide_channels: int, hidden: int = 8, open_bias: float = 3.0) -> None:
        super().__init__()
        if not 1 <= guide_channels < in_channels:
            raise ValueError(
                f"network guide_channels: expected 1 to {in_channels - 1} (fewer than the convolved inputs), "
                f"got {guide_channels}"
            )
        self.guide_channels = guide_channels
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, guide_channels, kernel_size=3, padding=1),
        )
        self.open_bias = float(open_bias)

    def reset_gate(self) -> None:
        """The last convolution at weight zero and bias `open_bias`: a gate open to 0.95 whatever the inputs."""
        nn.init.zeros_(self.branch[2].weight)
        nn.init.constant_(self.branch[2].bias, self.open_bias)

    def gate(self, inputs: torch.Tensor) -> torch.Tensor:
        """The (B, guide_channels, H, W) gate of `inputs`."""
        return torch.sigmoid(self.branch(inputs))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        split = inputs.shape[1] - self.guide_channels
        gated = inputs[:, split:] * self.gate(inputs).to(inputs.dtype)
        return torch.cat([inputs[:, :split], gated], dim=1)


class ResidualUNet2p5D(nn.Module):
    """Residual encoder-decoder with concatenate skips for 2.5D low-dose PET denoising.

    Args:
        in_slices: adjacent axial PET slices stacked as channels (odd: 1, 3, 5, 7); the centre one is restored.
        extra_channels: further input channels after the PET slices (e.g. 1 for a T1 image).
        out_channels: output channels (1).
        num_poolings: np, the number of 2x2 max-pooling steps (2-5 in the paper's grid).
        convs_per_stage: nc, the number of 3x3 conv + BN + ReLU per stage (1-3).
        base_features: width of the first stage; doubles with every pooling (32 in the authors' code).
        residual: add the centre input slice to the output.
        concat_skips: concatenate encoder outputs into the decoder.
        output_activation: None or "tanh" (the authors' code bounds the residual with tanh).
        dose_conditioning: the last input channel is a constant dose-code map that modulates every stage (FiLM);
            it is not convolved. `extra_channels` counts it.
        guide_channels: how many of the extra channels before the dose code are a guide image (T1, FLAIR) that
            enters through a `GuideGate` (0: no gate, every input enters the first convolution as it is).
    """

    def __init__(
        self,
        in_slices: int = 3,
        extra_channels: int = 0,
        out_channels: int = 1,
        num_poolings: int = 3,
        convs_per_stage: int = 2,
        base_features: int = 32,
        residual: bool = True,
        concat_skips: bool = True,
        output_activation: str | None = None,
        dose_conditioning: bool = False,
        guide_channels: int = 0,
    ) -> None:
        super().__init__()
        if in_slices < 1 or in_slices % 2 == 0:
            raise ValueError(f"network in_slices: expected an odd number >= 1, got {in_slices}")
        if not 1 <= num_poolings <= 6:
            raise ValueError(f"network num_poolings: expected 1-6, got {num_poolings}")
        if not 1 <= convs_per_stage <= 4:
            raise ValueError(f"network convs_per_stage: expected 1-4, got {convs_per_stage}")
        if base_features < 1 or extra_channels < 0:
            raise ValueError("network base_features must be >= 1 and extra_channels >= 0")
        if dose_conditioning and extra_channels < 1:
            raise ValueError("network dose_conditioning: needs the dose-code channel counted in extra_channels")
        if not 0 <= guide_channels <= extra_channels - (1 if dose_conditioning else 0):
            raise ValueError(
                f"network guide_channels: expected 0 to the extra channels before the dose code, got {guide_channels}"
            )
        if output_activation not in (None, "tanh"):
            raise ValueError(f"network output_activation: expected None or 'tanh', got {output_activation!r}")
        self.in_slices = in_slices
        self.in_channels = in_slices + extra_channels
        self.dose_conditioning = dose_conditioning
        conv_channels = self.in_channels - (1 if dose_conditioning else 0)
        self.centre = in_slices // 2
        self.num_poolings = num_poolings
        self.multiple = int(2**num_poolings)  # input sizes are padded to a multiple of this
        self.residual = residual
        self.concat_skips = concat_skips
        self.use_tanh = output_activation == "tanh"
        widths = [base_features * 2**level for level in range(num_poolings + 1)]

        self.encoder = nn.ModuleList()
        channels = conv_channels
        for level in range(num_poolings):
            self.encoder.append(_Stage(channels, widths[level], convs_per_stage))
            channels = widths[level]
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _Stage(channels, widths[num_poolings], convs_per_stage)
        channels = widths[num_poolings]
        self.upsample = UpSample(
            spatial_dims=2, scale_factor=2, mode="nontrainable", interp_mode="bilinear", align_corners=False
        )
        self.decoder = nn.ModuleList()
        for level in reversed(range(num_poolings)):
            in_ch = channels + (widths[level] if concat_skips else 0)
            self.decoder.append(_Stage(in_ch, widths[level], convs_per_stage))
            channels = widths[level]
        self.head = nn.Conv2d(channels, out_channels, kernel_size=1)
        stage_widths = widths[:num_poolings] + [widths[num_poolings]] + list(reversed(widths[:num_poolings]))
        self.film = DoseFiLM(stage_widths) if dose_conditioning else None
        self.guide_gate = GuideGate(conv_channels, guide_channels) if guide_channels else None
        init_truncated_normal(self)
        if self.guide_gate is not None:
            self.guide_gate.reset_gate()

    @staticmethod
    def _modulate(features: torch.Tensor, film: list[tuple[torch.Tensor, torch.Tensor]], level: int) -> torch.Tensor:
        """FiLM of one stage's output (unchanged without conditioning)."""
        if len(film) == 0:
            return features
        gamma, beta = film[level]
        # one pass over the activations (beta + features * (1 + gamma)) instead of two
        return torch.addcmul(beta.to(features.dtype), features, (1.0 + gamma).to(features.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        multiple = self.multiple
        pad_h = (multiple - height % multiple) % multiple
        pad_w = (multiple - width % multiple) % multiple
        top, left = pad_h // 2, pad_w // 2
        # always pad (possibly by zero) so that traced exports (ONNX) keep the padding shape-dependent
        padded = F.pad(x, [left, pad_w - left, top, pad_h - top], mode="replicate")

        features = padded
        film: list[tuple[torch.Tensor, torch.Tensor]] = []
        if self.film is not None:
            film = self.film(x[:, -1].mean(dim=(-2, -1)))
            features = padded[:, :-1]
        if self.guide_gate is not None:
            features = self.guide_gate(features)
        skips: list[torch.Tensor] = []
        for level, stage in enumerate(self.encoder):
            features = self._modulate(stage(features), film, level)
            skips.append(features)
            features = self.pool(features)
        features = self._modulate(self.bottleneck(features), film, self.num_poolings)
        for i, stage in enumerate(self.decoder):
            features = self.upsample(features)
            if self.concat_skips:
                features = torch.cat([features, skips[len(skips) - 1 - i]], dim=1)
            features = self._modulate(stage(features), film, self.num_poolings + 1 + i)
        out = self.head(features)
        if self.use_tanh:
            out = torch.tanh(out)
        out = out[..., top : top + height, left : left + width]
        if self.residual:
            out = out + x[:, self.centre : self.centre + 1]
        return out
