"""An Ignite metric for the evaluators: NRMSE, PSNR or SSIM of each volume inside its (brain) mask."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ignite.engine import Engine
from ignite.metrics import Metric

from ..metrics import masked_mae, masked_nrmse, masked_psnr, masked_ssim

__all__ = ["MaskedImageMetric"]


_FUNCTIONS = {"nrmse": masked_nrmse, "psnr": masked_psnr, "ssim": masked_ssim, "mae": masked_mae}


def _items(value: Any) -> list:
    return value if isinstance(value, list) else [value]


class MaskedImageMetric(Metric):
    """Mean over volumes of a masked metric of `pred` against `label`, the mask taken from the batch.

    Works on decollated (list of dicts) or collated (dict) engine outputs. Metrics are scale-invariant, so
    normalised intensities give the same values as the original units.
    """

    def __init__(
        self, name: str = "psnr", pred_key: str = "pred", label_key: str = "label", mask_key: str = "mask"
    ) -> None:
        if name not in _FUNCTIONS:
            raise ValueError(f"metric name: expected one of {sorted(_FUNCTIONS)}, got {name!r}")
        self.name = name
        self.pred_key, self.label_key, self.mask_key = pred_key, label_key, mask_key
        self._values: list[float] = []
        super().__init__(output_transform=lambda x: x)

    def reset(self) -> None:
        self._values = []

    def update(self, output: Any) -> None:  # values are gathered in iteration_completed
        pass

    def iteration_completed(self, engine: Engine) -> None:
        outputs, batches = _items(engine.state.output), _items(engine.state.batch)
        for out, batch in zip(outputs, batches):
            pred, label = out[self.pred_key], out.get(self.label_key, batch.get(self.label_key))
            mask = batch[self.mask_key]
            pred, label, mask = (torch.as_tensor(t).detach().float().cpu() for t in (pred, label, mask))
            if pred.ndim == 4:  # one decollated volume (C, X, Y, Z)
                pred, label, mask = pred[None], label[None], mask[None]
            for p, y, m in zip(pred, label, mask):  # (B, C, X, Y, Z)
                self._values.append(_FUNCTIONS[self.name](p[0], y[0], m[0] > 0.5))

    def compute(self) -> float:
        return float(np.mean(self._values)) if self._values else float("nan")
