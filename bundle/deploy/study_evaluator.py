"""The evaluator of `configs/evaluate.json`: an Ignite engine over test studies whose predictions come from the
shipped inference path (`trained_denoiser.TrainedDenoiser`: the components of `configs/inference.json`), and
whose references are read on each study's own grid, as a user's study and its output are."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from ignite.engine import Engine
from monai.data import MetaTensor

__all__ = ["NetworkPathPredictor", "StudyEvaluator", "study_predictor"]


class StudyEvaluator(Engine):
    """One iteration per test item (a datalist entry with file paths): `predict(item)` gives the denoised study on
    its own grid; `reference_transform(item)` reads the item's volumes (low-dose `image`, `label`, `mask`, lesion
    and tissue maps) on that grid; `postprocessing` (e.g. SaveImaged) runs on the merged item. The engine's
    `state.batch` is the read item and `state.output` holds `pred`, as handlers such as `EvaluationReport` expect."""

    def __init__(
        self,
        items: Sequence[Mapping[str, Any]],
        predict: Callable[[Mapping[str, Any]], MetaTensor],
        reference_transform: Callable[[dict[str, Any]], dict[str, Any]],
        postprocessing: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        handlers: Iterable[Any] = (),
    ) -> None:
        super().__init__(self._step)
        self.items = [dict(item) for item in items]
        self.predict, self.reference_transform, self.postprocessing = predict, reference_transform, postprocessing
        for handler in handlers:
            handler.attach(self)

    def _step(self, engine: Engine, item: dict[str, Any]) -> dict[str, Any]:
        data = self.reference_transform(dict(item))
        output = {"pred": self.predict(item)}
        if self.postprocessing is not None:
            output = {"pred": self.postprocessing({**data, **output})["pred"]}
        engine.state.batch = data
        return output

    def run(self) -> Any:  # type: ignore[override]
        return super().run(self.items, max_epochs=1)


class NetworkPathPredictor:
    """For a network with MR input channels (AC-Net with its T1), which the inference config cannot feed yet: the
    training config's volume preprocessing, inferer and inversion to the study's grid."""

    def __init__(self, network: torch.nn.Module, preprocessing: Callable, inferer: Callable, device: Any) -> None:
        from monai.transforms import Invertd

        self.network, self.preprocessing, self.inferer = network.eval(), preprocessing, inferer
        self.device = torch.device(device)
        self.invert = Invertd(keys="pred", orig_keys="image", transform=preprocessing, nearest_interp=False)

    def __call__(self, item: Mapping[str, Any]) -> MetaTensor:
        data = self.preprocessing(dict(item))
        image = data["image"]
        with torch.no_grad():
            pred = self.inferer(torch.as_tensor(image)[None].to(self.device), self.network)[0].cpu()
        data["pred"] = MetaTensor(pred, meta=dict(image.meta))
        return self.invert(data)["pred"]


def study_predictor(
    ckpt_path: str | Path,
    drf: float | None,
    extra_keys: Sequence[str],
    precision: str,
    device: Any,
    network: torch.nn.Module,
    preprocessing: Callable,
    inferer: Callable,
) -> Callable[[Mapping[str, Any]], MetaTensor]:
    """item -> denoised study on its own grid, for the checkpoint `ckpt_path` (in a training run's checkpoints folder,
    with its manifest, or a released weights file with its provenance): through the shipped inference path, or (only
    for a network with MR inputs) the training config's network path."""
    from ..weights import load_network_weights
    from .trained_denoiser import TrainedDenoiser

    if [key for key in extra_keys if key != "dose"]:
        return NetworkPathPredictor(load_network_weights(network, ckpt_path), preprocessing, inferer, device)
    # the config's network must be the checkpoint's (refused otherwise); the file itself is verified, once, below
    load_network_weights(network, ckpt_path, verify=False)
    ckpt = Path(ckpt_path)
    source = ckpt.parent if (ckpt.parent / "manifest.json").is_file() else ckpt
    denoiser = TrainedDenoiser(source, ckpt.name, precision=precision, device=device)
    return lambda item: denoiser.denoise(item["image"], drf)
