"""The inference paths of the bundle (fp32, channels-last, bf16 autocast, TorchScript, ONNX Runtime), each as a
callable over a whole volume, with the tolerance each must hold against fp32 eager on every CPU kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

__all__ = ["PATH_TOLERANCE", "default_inference_path", "inference_runner"]


# max |path - fp32 eager| / output range, per inference path (tests/test_inference_paths.py)
PATH_TOLERANCE = {
    "fp32": 0.0,
    "channels_last": 1e-5,
    "torchscript": 1e-5,
    "onnx": 1e-5,
    "bf16": 3e-2,
    "bf16_channels_last": 3e-2,
}


def inference_runner(
    path: str, net: torch.nn.Module, num_slices: int, in_channels: int, workdir: Path, batch_slices: int = 4
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable denoising a (1, 1 + E, X, Y, Z) volume along one inference path.

    Paths: fp32 (eager), channels_last, bf16 (autocast), bf16_channels_last, torchscript, onnx. Each matches fp32
    eager within PATH_TOLERANCE (max |difference| relative to the output's range).
    """
    from ..inferers import StreamingSliceInferer
    from ..networks.fusion import fold_batch_norm

    precision = "bf16" if path.startswith("bf16") else "fp32"
    channels_last = path in ("channels_last", "bf16_channels_last")
    model: Any = fold_batch_norm(net)  # as `backends.load_model` runs eager weights
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if path == "torchscript":
        from .export import export_torchscript

        target = workdir / "bench_model.ts"
        target.unlink(missing_ok=True)
        export_torchscript(net, target)
        model = torch.jit.load(str(target)).eval()
    elif path == "onnx":
        from .backends import OnnxModel
        from .export import export_onnx

        target = workdir / "bench_model.onnx"
        target.unlink(missing_ok=True)
        export_onnx(net, target, in_channels)
        model = OnnxModel(target, threads=torch.get_num_threads())
    inferer = StreamingSliceInferer(
        num_slices=num_slices, batch_slices=batch_slices, precision=precision, channels_last=channels_last
    )

    def run(volume: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return inferer(volume, model)

    return run


def default_inference_path() -> str:
    """The path inference.json runs on this CPU: precision auto (bf16 only with native bf16) + channels-last."""
    from ..inferers import resolve_precision

    return "bf16_channels_last" if resolve_precision("auto", "cpu") is not None else "channels_last"
