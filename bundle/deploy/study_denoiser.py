"""One study, from its preprocessed item to the denoised image on its own grid: the path every user's study takes,
and the one every evaluation of shipped or candidate weights takes too.

- `StudyDenoiser`: dose/noise input channel, inferer, postprocessing (inversion to the study's grid and units, the
  correction added to the untouched input); used by `batch.BatchInference` for each study.
- `inference_components`: `configs/inference.json` (plus overrides) parsed into its preprocessing and a
  `StudyDenoiser`, so that an evaluation runs exactly the components a user runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from monai.data import MetaTensor

__all__ = [
    "INFERENCE_CONFIG",
    "MR_GUIDED_VARIANT",
    "NETWORK_SETTINGS",
    "StudyDenoiser",
    "inference_components",
    "network_overrides",
    "recorded_detail_drf",
]

INFERENCE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "inference.json"
MR_GUIDED_VARIANT = INFERENCE_CONFIG.parent / "variants" / "mr_guided_inference.json"  # layered on INFERENCE_CONFIG


class StudyDenoiser:
    """Called with a study's name and its preprocessed item (`image`: the network input (1, X, Y, Z) on the
    network's grid, with its invertible history): returns the denoised (1, X', Y', Z') MetaTensor on the study's own
    grid and in its units.

    Args:
        inferer: whole-volume inferer (e.g. StreamingSliceInferer).
        postprocessing: transforms mapping `pred` back to the study's grid and units.
        network: the model (torch module, TorchScript module or ONNX Runtime wrapper).
        device: where the network runs.
        dose_input: for a dose-conditioned model, callable(name, image, drf, study) returning the dose-code channel
            (`dose_input.DoseInput`); None for a dose-blind model.
        mr_keys: for an MR-guided model, the item's MR images (on the network's grid, scaled) appended after the PET,
            in this order and before the dose code.
    """

    def __init__(
        self,
        inferer: Callable,
        postprocessing: Callable,
        network: Callable,
        device: torch.device | str = "cpu",
        dose_input: Callable[..., torch.Tensor] | None = None,
        mr_keys: Sequence[str] = (),
    ) -> None:
        self.inferer = inferer
        self.mr_keys = list(mr_keys)
        self.postprocessing = postprocessing
        self.network = network
        self.device = torch.device(device)
        self.dose_input = dose_input
        self.detail_weights: dict[str, float] = {}  # per study: the gain of its sub-grid detail (native_grid)
        self.hot_focus_ml: dict[str, float] = {}  # per study: the volume the hot-uptake restore acted on (hot_uptake)
        if hasattr(self.network, "eval"):
            self.network.eval()

    def __call__(
        self,
        name: str,
        data: Mapping[str, Any],
        drf: float | str | None = None,
        study: Mapping[str, Any] | None = None,
    ) -> MetaTensor:
        """Denoise one preprocessed study (`name` names it in messages); `drf` overrides the dose input's setting for
        this call; `study` ({"image": path, "format"}) lets the dose input read a DICOM header."""
        image = data["image"]
        network_input = torch.cat([torch.as_tensor(image)] + [torch.as_tensor(data[key]) for key in self.mr_keys])
        if self.dose_input is not None:
            network_input = torch.cat([network_input, self.dose_input(name, image, drf, study)], dim=0)
        with torch.no_grad():
            pred = self.inferer(network_input[None].to(self.device), self.network)[0].cpu()
        item = dict(data)
        item["pred"] = MetaTensor(pred, meta=dict(image.meta))
        used = getattr(self.dose_input, "used", {}).get(name) if self.dose_input is not None else None
        item["dose_used"] = None if used is None else used["drf"]
        processed = self.postprocessing(item)
        if processed.get("detail_weight") is not None:
            self.detail_weights[name] = float(processed["detail_weight"])
        if processed.get("hot_focus_ml") is not None:
            self.hot_focus_ml[name] = float(processed["hot_focus_ml"])
        result = processed["pred"]
        if not bool(torch.isfinite(torch.as_tensor(result)).all()):
            raise ValueError(f"study {name}: the prediction contains NaN or Inf")
        return result


def inference_components(
    overrides: Mapping[str, Any] | None = None, config_files: Sequence[str | Path] = (INFERENCE_CONFIG,)
) -> tuple[Callable[[dict[str, Any]], dict[str, Any]], StudyDenoiser]:
    """(preprocessing, StudyDenoiser) of the inference config with `overrides` (config ids such as `ckpt_path`,
    `network_def#base_features`, `dose_conditioning`, `precision`)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(f) for f in config_files])
    parser["bundle_root"] = str(INFERENCE_CONFIG.parents[1])
    for key, value in (overrides or {}).items():
        parser[key] = value
    denoiser = StudyDenoiser(
        parser.get_parsed_content("inferer"),
        parser.get_parsed_content("postprocessing"),
        parser.get_parsed_content("network"),
        parser.get_parsed_content("device"),
        parser.get_parsed_content("dose_input"),
        parser.get_parsed_content("mr_keys"),
    )
    return parser.get_parsed_content("preprocessing"), denoiser


NETWORK_SETTINGS = {
    "num_poolings": 3,
    "convs_per_stage": 2,
    "base_features": 16,
    "residual": True,
    "concat_skips": True,
    "guide_channels": 0,
}


def network_overrides(settings: Mapping[str, Any]) -> dict[str, Any]:
    """`network_def#...` overrides of the inference config from a run's settings (a checkpoint manifest's strings or
    a fold's config values), so that the network built for inference is the one trained."""
    from ..provenance import recorded_setting

    out = {
        f"network_def#{name}": recorded_setting(settings, name, default) for name, default in NETWORK_SETTINGS.items()
    }
    if "num_slices" in settings:
        out["num_slices"] = int(str(settings["num_slices"]))
    return out


def recorded_detail_drf(provenance_file: str | Path, ckpt_path: str | Path) -> float | None:
    """The `detail_drf` fitted for the weights at `ckpt_path` (`scripts/fit_detail_gain.py`, in their provenance's
    `detail_gain`), or None (a user's checkpoint, or none fitted: the study's detail is then kept whole)."""
    from .noise_check import provenance_of

    value = ((provenance_of(provenance_file, ckpt_path) or {}).get("detail_gain") or {}).get("detail_drf")
    return None if value is None else float(value)
