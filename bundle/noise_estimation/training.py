"""Fitting the noise estimator (MONAI's SupervisedTrainer, MSE on the log2 noise level of each slice) and the dose
calibration that maps a noise level to the dose-conditioned model's code."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer

from ..errors import InputDataError
from ..metrics.relative_noise import relative_noise_log2
from ..networks.noise_estimator import NoiseLevelNet
from .samples import NoisePair, NoiseSliceSamples

__all__ = ["fit_code_calibration", "fit_dose_calibration", "train_noise_estimator"]


def train_noise_estimator(
    pairs: Sequence[NoisePair],
    epochs: int = 12,
    samples_per_epoch: int = 2048,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    seed: int = 0,
    features: int = 24,
    in_slices: int = 3,
) -> tuple[NoiseLevelNet, list[float]]:
    """(trained network, mean training loss of each epoch); cosine learning-rate decay, seeded."""
    torch.manual_seed(seed)
    network = NoiseLevelNet(in_slices, features)
    samples = NoiseSliceSamples(pairs, samples_per_epoch, seed=seed, in_slices=in_slices)
    loader = torch.utils.data.DataLoader(samples, batch_size=batch_size, shuffle=False, num_workers=0)
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=epochs,
        train_data_loader=loader,
        network=network,
        optimizer=optimizer,
        loss_function=torch.nn.MSELoss(),
    )
    losses: list[float] = []
    epoch_losses: list[float] = []

    @trainer.on(Events.EPOCH_STARTED)
    def _set_epoch(engine: Any) -> None:
        samples.epoch = engine.state.epoch
        epoch_losses.clear()

    @trainer.on(Events.ITERATION_COMPLETED)
    def _step(engine: Any) -> None:
        schedule.step()
        epoch_losses.append(float(engine.state.output[0]["loss"]))

    @trainer.on(Events.EPOCH_COMPLETED)
    def _record(engine: Any) -> None:
        losses.append(float(np.mean(epoch_losses)))

    trainer.run()
    network.eval()
    return network, losses


def _log_dose_line(pairs: Sequence[NoisePair], levels: Sequence[float], what: str) -> tuple[np.ndarray, float, float]:
    """(log2 DRFs, slope, intercept) of levels = intercept + slope x log2 DRF, least squares over the pairs."""
    drfs = np.log2([p.drf for p in pairs])
    if len(set(drfs.tolist())) < 2:
        raise InputDataError(f"{what}: needs pairs at two or more dose levels")
    slope, intercept = np.polyfit(drfs, np.asarray(levels, dtype=float), 1)
    return drfs, float(slope), float(intercept)


def fit_dose_calibration(pairs: Sequence[NoisePair]) -> dict[str, Any]:
    """log2 noise = intercept + slope x log2 DRF, least squares over measured pairs (their true noise)."""
    levels = np.array([relative_noise_log2(p.low, p.full, p.mask) for p in pairs])
    drfs, slope, intercept = _log_dose_line(pairs, levels, "dose calibration")
    residual = levels - (intercept + slope * drfs)
    return {
        "model": "log2 noise = intercept + slope x log2 DRF",
        "intercept": intercept,
        "slope": slope,
        "rms_residual_log2_noise": float(np.sqrt(np.mean(residual**2))),
        "n": int(len(pairs)),
    }


def fit_code_calibration(network: NoiseLevelNet, pairs: Sequence[NoisePair]) -> dict[str, Any]:
    """log2 *estimated* noise = intercept + slope x log2 DRF over the pairs: the calibration inference inverts, so
    that the estimator's own compression of the range (too high at low noise, where anatomy reads as noise; too low
    at high noise) maps back to the DRF code the training cohort's images had on average."""
    from .estimator import volume_noise_log2

    levels = np.array([volume_noise_log2(network, p.low) for p in pairs])
    drfs, slope, intercept = _log_dose_line(pairs, levels, "code calibration")
    residual = drfs - (levels - intercept) / slope
    return {
        "model": "log2 estimated noise = intercept + slope x log2 DRF",
        "intercept": intercept,
        "slope": slope,
        "rms_residual_log2_drf": float(np.sqrt(np.mean(residual**2))),
        "n": int(len(pairs)),
    }
