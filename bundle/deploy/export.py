"""Export the trained network to TorchScript and ONNX, atomically, and check both against eager PyTorch."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from ..io import atomic_path, read_json
from ..weights import load_network_weights

__all__ = [
    "check_exports",
    "export_onnx",
    "export_record",
    "export_torchscript",
    "load_inference_network",
    "record_provenance_entry",
    "record_run_entry",
    "relative_max_difference",
    "run_provenance",
    "run_provenance_file",
]

logger = logging.getLogger(__name__)


def load_inference_network(
    config_file: str = "configs/inference.json",
    ckpt_path: str | None = None,
    overrides: dict[str, Any] | None = None,
    verify: bool = True,
) -> torch.nn.Module:
    """The inference config's `network_def` with the checkpoint's weights, in eval mode on CPU (`verify`: check the
    weights against their provenance; off for a release's staged weights, which have none yet)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(config_file)
    parser.update(overrides or {})
    if ckpt_path:
        parser["ckpt_path"] = str(ckpt_path)  # the network's form (dose conditioning) follows these weights' provenance
    net = parser.get_parsed_content("network_def")
    path = ckpt_path or parser.get_parsed_content("ckpt_path")
    return load_network_weights(net, path, verify=verify).eval()


def relative_max_difference(reference: torch.Tensor, other: torch.Tensor) -> float:
    """max |a - b| / (max(a) - min(a)): the export tolerance measure."""
    ref = reference.detach().float()
    span = float(ref.max() - ref.min()) or 1.0
    return float((ref - other.detach().float()).abs().max()) / span


def export_torchscript(
    net: torch.nn.Module,
    path: str | Path,
    meta_file: str | None = None,
    config_file: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Script the network (MONAI's `convert_to_torchscript`), embedding metadata and config as extra files."""
    from monai.networks.utils import convert_to_torchscript

    extra: dict[str, Any] = {}
    if meta_file:
        extra["metadata.json"] = json.dumps(read_json(meta_file, "metadata")).encode()
    if config_file:
        extra["inference.json"] = json.dumps(read_json(config_file, "config")).encode()
    with atomic_path(path, overwrite=overwrite) as tmp:
        convert_to_torchscript(net.cpu().eval(), filename_or_obj=str(tmp), extra_files=extra, verify=False)
    return Path(path)


def export_onnx(
    net: torch.nn.Module,
    path: str | Path,
    in_channels: int,
    example_size: int = 128,
    opset: int = 17,
    overwrite: bool = False,
) -> Path:
    """ONNX with dynamic batch, height and width; input `image`, output `pred`."""
    example = torch.rand(1, in_channels, example_size, example_size)
    axes = {0: "batch", 2: "height", 3: "width"}
    with atomic_path(path, overwrite=overwrite) as tmp:
        torch.onnx.export(
            net.cpu().eval(),
            (example,),
            str(tmp),
            input_names=["image"],
            output_names=["pred"],
            dynamic_axes={"image": axes, "pred": axes},
            opset_version=opset,
            dynamo=False,
        )
    return Path(path)


def check_exports(
    net: torch.nn.Module,
    in_channels: int,
    torchscript_path: str | Path | None = None,
    onnx_path: str | Path | None = None,
    sizes: tuple[tuple[int, int], ...] = ((128, 128), (100, 120)),
    seed: int = 0,
) -> dict[str, float]:
    """Relative max difference of each export against eager on random inputs of several sizes."""
    gen = torch.Generator().manual_seed(seed)
    inputs = [torch.rand(2, in_channels, h, w, generator=gen) for h, w in sizes]
    with torch.no_grad():
        eager = [net.eval()(x) for x in inputs]
    out: dict[str, float] = {}
    if torchscript_path:
        ts = torch.jit.load(str(torchscript_path), map_location="cpu").eval()
        with torch.no_grad():
            out["torchscript"] = max(relative_max_difference(e, ts(x)) for e, x in zip(eager, inputs))
    if onnx_path:
        from .backends import OnnxModel

        onnx = OnnxModel(onnx_path, verify=False)  # checked here against eager; its provenance is written after
        out["onnx"] = max(relative_max_difference(e, onnx(x)) for e, x in zip(eager, inputs))
    return out


def export_record(export: str | Path, weights_sha256: str) -> dict[str, str]:
    """An export's provenance entry: its own sha256 and that of the weights it was made from (a backend refuses an
    export whose weights are not the shipped ones: `weights.verify_shipped_file`)."""
    from ..io import file_sha256

    return {"sha256": file_sha256(export), "weights_sha256": weights_sha256}


def record_provenance_entry(weights: str | Path, key: str, value: Any) -> Path:
    """Add `key: value` to the provenance of the shipped weights at `weights` (refused for weights it does not
    describe, so that a fit is never recorded for other weights)."""
    from ..errors import InputDataError
    from ..io import read_json, write_json
    from ..weights import PROVENANCE_FILE, verify_shipped_file

    if not verify_shipped_file(weights):
        raise InputDataError(f"{weights}: not the weights its {PROVENANCE_FILE} describes; nothing recorded")
    provenance = Path(weights).parent / PROVENANCE_FILE
    record = read_json(provenance, "model provenance")
    record[key] = value
    return write_json(record, provenance, overwrite=True)


RUN_WEIGHTS = "best.pt"  # the weights of a training run's checkpoints folder that inference and evaluation use


def run_provenance_file(checkpoints: str | Path) -> Path:
    """Where a training run's fits for its `RUN_WEIGHTS` are recorded: `<checkpoints>/best_provenance.json`, the file
    `TrainedDenoiser` and `configs/inference.json` read beside any weights file."""
    return Path(checkpoints) / f"{Path(RUN_WEIGHTS).stem}_provenance.json"


def run_provenance(checkpoints: str | Path) -> dict[str, Any]:
    """The provenance of a training run's `RUN_WEIGHTS` (a fresh one naming their sha256 when none is recorded);
    refused in one line when that file describes other weights (the run was trained further since)."""
    from ..errors import InputDataError
    from ..io import file_sha256

    weights = Path(checkpoints) / RUN_WEIGHTS
    if not weights.is_file():
        raise InputDataError(f"{checkpoints}: no {RUN_WEIGHTS}; expected a training run's checkpoints folder")
    provenance, sha256 = run_provenance_file(checkpoints), file_sha256(weights)
    record = (
        read_json(provenance, "run provenance") if provenance.is_file() else {"weights": RUN_WEIGHTS, "sha256": sha256}
    )
    if record.get("sha256") != sha256:
        raise InputDataError(
            f"{provenance}: records the fits of other weights than {weights} (trained further since?); remove it "
            "and fit again"
        )
    return record


def record_run_entry(checkpoints: str | Path, key: str, value: Any) -> Path:
    """Add `key: value` to the provenance of a training run's `RUN_WEIGHTS` (`run_provenance`)."""
    from ..io import write_json

    record = run_provenance(checkpoints)
    record[key] = value
    return write_json(record, run_provenance_file(checkpoints), overwrite=True)
