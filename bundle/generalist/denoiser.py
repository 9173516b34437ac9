"""A trained run's network as a volume-in, volume-out denoiser (the training pipeline's scaling and dose code)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputDataError
from ..inferers import StreamingSliceInferer
from ..io import read_json
from ..networks import ResidualUNet2p5D
from ..transforms.dose import dose_code
from ..transforms.intensity import percentile_scale
from ..weights import load_network_weights

__all__ = ["TrainedDenoiser"]


def _setting(settings: dict[str, Any], name: str, default: Any) -> Any:
    value = settings.get(name, default)
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


class TrainedDenoiser:
    """The network of a training run's `checkpoints/` (its `manifest.json` settings and `best.pt` weights).

    Called with an (X, Y, Z) volume in any unit and its DRF: divides by the volume's 99.5th percentile, adds the dose
    code channel when the network is dose-conditioned, infers slice by slice and multiplies back.
    """

    def __init__(self, checkpoints: str | Path, weights: str = "best.pt", precision: str = "auto") -> None:
        folder = Path(checkpoints)
        manifest = folder / "manifest.json"
        if not manifest.is_file():
            raise InputDataError(f"{folder}: no manifest.json; expected a training run's checkpoints folder")
        settings = read_json(manifest, "checkpoint manifest").get("settings", {})
        extra = list(_setting(settings, "extra_keys", []))
        self.dose_conditioned = bool(_setting(settings, "dose_conditioning", False))
        self.num_slices = int(_setting(settings, "num_slices", 3))
        self.percentile = 99.5
        network = ResidualUNet2p5D(
            in_slices=self.num_slices,
            extra_channels=len(extra),
            num_poolings=int(_setting(settings, "num_poolings", 3)),
            convs_per_stage=int(_setting(settings, "convs_per_stage", 2)),
            base_features=int(_setting(settings, "base_features", 16)),
            residual=bool(_setting(settings, "residual", True)),
            concat_skips=bool(_setting(settings, "concat_skips", True)),
            dose_conditioning=self.dose_conditioned,
        )
        self.network = load_network_weights(network, folder / weights).eval()
        self.inferer = StreamingSliceInferer(self.num_slices, batch_slices=16, precision=precision, channels_last=True)
        self.settings = settings

    def __call__(self, volume: np.ndarray, drf: float | None) -> np.ndarray:
        scale = percentile_scale(volume, self.percentile)
        channels = [torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32) / scale)]
        if self.dose_conditioned:
            if drf is None:
                raise InputDataError("a dose-conditioned network needs the study's DRF")
            channels.append(torch.full_like(channels[0], dose_code(drf)))
        batch = torch.stack(channels)[None]
        with torch.no_grad():
            out = self.inferer(batch, self.network)
        return np.asarray(out[0, 0].float().numpy() * scale, dtype=np.float32)
