"""The GPU part of the benchmark: inference time per 256 x 256 slice and per 89-slice volume of the paper's network,
the shipped generalist model (dose-conditioned, base 16, its dose-code channel included) and the generalist GPU
profile's network (dose-conditioned, base 32), fp32 and bf16 in the same run, and training slices per second of each
(bf16 autocast, channels-last, RMSprop on the device)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..benchmark.measure import device_volume_timings, training_slices_per_second

__all__ = ["gpu_benchmark"]


NETWORKS = {  # name: (base features, dose-conditioned)
    "paper": (32, False),
    "shipped generalist": (16, True),
    "generalist GPU profile": (32, True),
}


def _network(base_features: int, dose_conditioned: bool = False) -> torch.nn.Module:
    from ..networks.residual_unet import ResidualUNet2p5D

    extra = 1 if dose_conditioned else 0
    return ResidualUNet2p5D(
        in_slices=3, extra_channels=extra, dose_conditioning=dose_conditioned, base_features=base_features
    )


def gpu_benchmark(
    device: torch.device,
    networks: Sequence[str] = tuple(NETWORKS),
    shape: tuple[int, int, int] = (256, 256, 89),
    repeat: int = 20,
    train_steps: int = 20,
) -> dict[str, Any]:
    """Every network of `networks` at fp32 and bf16 (one run, side by side), the bf16 speed-up, and training
    throughput."""
    rng = np.random.default_rng(0)
    volume = rng.gamma(2.0, 0.5, size=shape).astype(np.float32)  # timing does not depend on the content
    rows, training = [], []
    for name in networks:
        width, conditioned = NETWORKS[name]
        extra = 1 if conditioned else 0
        timings = device_volume_timings(
            _network(width, conditioned), volume, 3, device, ("fp32", "bf16"), repeat, extra_channels=extra
        )
        by_precision = {t["precision"]: t for t in timings}
        for t in timings:
            rows.append(
                {
                    "network": name,
                    "base_features": width,
                    "precision": t["precision"],
                    "ms_per_slice": t["ms/slice"],
                    "ms_per_volume_incl_transfers": t["ms/volume incl. transfers"],
                    "speedup_over_fp32": by_precision["fp32"]["ms/slice"] / t["ms/slice"],
                }
            )
        speed = training_slices_per_second(
            _network(width, conditioned), 3 + extra, device, size=shape[0], steps=train_steps, warmup=3
        )
        training.append({"network": name, "base_features": width, "slices_per_second": speed})
    return {"shape": list(shape), "inference": rows, "training": training}
