"""Model backends for inference: PyTorch weights, TorchScript, or ONNX Runtime (switch `backend` in the config)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigValueError, InputDataError
from ..networks.fusion import fold_batch_norm
from ..weights import load_network_weights, verify_shipped_file

__all__ = ["BACKENDS", "OnnxModel", "load_model"]

BACKENDS = ("torch", "torchscript", "onnx")


class OnnxModel:
    """An ONNX Runtime session called like a torch module: (B, C, H, W) tensor in, tensor out."""

    def __init__(
        self,
        path: str | os.PathLike,
        device: torch.device | str = "cpu",
        threads: int | None = None,
        verify: bool = True,
    ) -> None:
        import onnxruntime as ort

        p = Path(path)
        if not p.is_file():
            raise InputDataError(f"ONNX model {p}: file not found (export it with scripts/export.py)")
        if verify:
            verify_shipped_file(p)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if torch.device(device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(p), sess_options=options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own error types
            raise InputDataError(f"ONNX model {p}: cannot be loaded ({type(exc).__name__})") from exc
        self.input_name = self.session.get_inputs()[0].name

    def eval(self) -> "OnnxModel":
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().float().cpu().numpy())
        out = self.session.run(None, {self.input_name: array})[0]
        return torch.from_numpy(out).to(x.device)


def load_model(
    backend: str,
    network_def: torch.nn.Module,
    ckpt_path: str,
    torchscript_path: str,
    onnx_path: str,
    device: torch.device | str = "cpu",
    channels_last: bool = False,
) -> Any:
    """The model to run for `backend`: 'torch' (network_def + weights, batch norms folded into the convolutions),
    'torchscript' or 'onnx'."""
    device = torch.device(device)
    if backend == "torch":
        net = fold_batch_norm(load_network_weights(network_def, ckpt_path)).to(device)
        return net.to(memory_format=torch.channels_last) if channels_last else net
    if backend == "torchscript":
        p = Path(torchscript_path)
        if not p.is_file():
            raise InputDataError(f"TorchScript model {p}: file not found (python -m monai.bundle ckpt_export ...)")
        verify_shipped_file(p)
        try:
            return torch.jit.load(str(p), map_location=device).eval()
        except (RuntimeError, ValueError) as exc:
            raise InputDataError(f"TorchScript model {p}: cannot be loaded ({type(exc).__name__})") from exc
    if backend == "onnx":
        return OnnxModel(onnx_path, device)
    raise ConfigValueError(f"setting backend: expected one of {list(BACKENDS)}, got {backend!r}")
