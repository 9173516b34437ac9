"""The GPU part of the benchmark: inference time per 256 x 256 slice and per 89-slice volume for the shipped width
and the paper's width, fp32 and bf16 in the same run, and training slices per second (bf16 autocast, channels-last,
RMSprop on the device)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..benchmark.measure import device_volume_timings, training_slices_per_second

__all__ = ["gpu_benchmark"]


def _network(base_features: int) -> torch.nn.Module:
    from ..networks.residual_unet import ResidualUNet2p5D

    return ResidualUNet2p5D(in_slices=3, base_features=base_features)


def gpu_benchmark(
    device: torch.device,
    widths: Sequence[int] = (16, 32),
    shape: tuple[int, int, int] = (256, 256, 89),
    repeat: int = 20,
    train_steps: int = 20,
) -> dict[str, Any]:
    """Every width at fp32 and bf16 (one run, side by side), the bf16 speed-up, and training throughput."""
    rng = np.random.default_rng(0)
    volume = rng.gamma(2.0, 0.5, size=shape).astype(np.float32)  # timing does not depend on the content
    rows = []
    for width in widths:
        timings = device_volume_timings(_network(width), volume, 3, device, precisions=("fp32", "bf16"), repeat=repeat)
        by_precision = {t["precision"]: t for t in timings}
        for t in timings:
            rows.append(
                {
                    "base_features": width,
                    "precision": t["precision"],
                    "ms_per_slice": t["ms/slice"],
                    "ms_per_volume_incl_transfers": t["ms/volume incl. transfers"],
                    "speedup_over_fp32": by_precision["fp32"]["ms/slice"] / t["ms/slice"],
                }
            )
    training = [
        {
            "base_features": w,
            "slices_per_second": training_slices_per_second(
                _network(w), 3, device, size=shape[0], steps=train_steps, warmup=3
            ),
        }
        for w in widths
    ]
    return {"shape": list(shape), "inference": rows, "training": training}
