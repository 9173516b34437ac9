"""Training samples for the noise estimator: slice stacks of low-dose images with their measured noise level.

Each sample is a stack of `in_slices` adjacent axial slices of one low-dose volume, each divided by the volume's
brain mean, plus the centre slice's brain region, and its target: log2 of the RMS of (low - full) over that region,
the quantity `metrics.relative_noise` measures on a whole volume. The target is measured on the sample as drawn,
after augmentation, so an augmentation that changes the noise changes the label with it:

- **noise scale**: low = full + k (low - full), k log-uniform in `noise_scale` (x0.5-2 by default: a noise variance
  x0.25-4 around each simulated dose level, so the label cannot be read from a fixed dose-to-noise mapping);
- **post-filter**: with probability `filter_probability`, an in-plane Gaussian of sigma uniform in `filter_sigma`
  voxels on both images (scanners post-filter their reconstructions; a filter lowers the noise and correlates it);
- **orientation**: random in-plane flips and transposition;
- **crop**: a `crop` x `crop` in-plane window around a random voxel of the region (the estimator is fully
  convolutional, so it reads whole slices at inference).

A sample is a pure function of (seed, epoch, index), so a run is reproducible and resumable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from scipy import ndimage

from ..data import at_dose
from ..errors import InputDataError
from ..io import load_ras_volume
from ..metrics.relative_noise import MIN_MASK_VOXELS, brain_mean, noise_mask

__all__ = ["NoisePair", "NoiseSliceSamples", "load_noise_pairs", "stack_slices"]


@dataclass
class NoisePair:
    """One low-dose volume and its full dose, each over its own brain mean, with the low-dose brain region."""

    subject: str
    drf: float
    low: np.ndarray
    full: np.ndarray
    mask: np.ndarray

    @classmethod
    def from_volumes(cls, subject: str, drf: float, low: np.ndarray, full: np.ndarray) -> "NoisePair":
        if low.shape != full.shape:
            raise InputDataError(f"subject {subject}: low-dose {low.shape} and full-dose {full.shape} grids differ")
        mask = noise_mask(low)
        return cls(
            subject,
            float(drf),
            (low / brain_mean(low, mask)).astype(np.float32),
            (full / brain_mean(full, mask)).astype(np.float32),
            mask,
        )

    def usable_slices(self, margin: int) -> list[int]:
        """Axial indices whose region holds enough voxels and that have `margin` neighbours on both sides."""
        counts = self.mask.sum(axis=(0, 1))
        return [z for z in range(margin, self.mask.shape[2] - margin) if counts[z] >= MIN_MASK_VOXELS // 4]


def load_noise_pairs(items: Sequence[dict[str, Any]], drfs: Sequence[float]) -> list[NoisePair]:
    """Every (subject, DRF) pair of datalist `items` (on the network's grid) at `drfs`."""
    pairs = []
    for item in items:
        full = load_ras_volume(item["label"])
        for drf in drfs:
            low = load_ras_volume(at_dose([item], float(drf))[0]["image"])
            pairs.append(NoisePair.from_volumes(item["subject"], drf, low, full))
    return pairs


def stack_slices(volume: np.ndarray, z: int, in_slices: int) -> np.ndarray:
    """(in_slices, X, Y) around axial index z, the volume's end slices repeated beyond its edges."""
    half = in_slices // 2
    index = np.clip(np.arange(z - half, z + half + 1), 0, volume.shape[2] - 1)
    return np.moveaxis(volume[:, :, index], 2, 0)


class NoiseSliceSamples(torch.utils.data.Dataset):
    """`samples_per_epoch` augmented slice samples, {"image": (in_slices + 1, X, Y), "label": (1,)}."""

    def __init__(
        self,
        pairs: Sequence[NoisePair],
        samples_per_epoch: int,
        seed: int = 0,
        in_slices: int = 3,
        noise_scale: tuple[float, float] = (0.5, 2.0),
        filter_probability: float = 0.5,
        filter_sigma: tuple[float, float] = (0.3, 1.5),
        crop: int = 64,
    ) -> None:
        if not pairs:
            raise InputDataError("noise estimator: no training pairs")
        self.pairs = list(pairs)
        self.slices = [(p, z) for p in range(len(self.pairs)) for z in self.pairs[p].usable_slices(in_slices // 2)]
        self.samples_per_epoch, self.seed, self.in_slices = samples_per_epoch, seed, in_slices
        self.noise_scale, self.filter_probability, self.filter_sigma = noise_scale, filter_probability, filter_sigma
        self.crop = crop
        self.epoch = 0

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _window(self, region: np.ndarray, rng: np.random.Generator) -> tuple[slice, slice]:
        """In-plane crop around a random voxel of `region`, inside the slice."""
        xs, ys = np.nonzero(region)
        pick = int(rng.integers(len(xs)))
        starts = [
            int(np.clip(centre - self.crop // 2, 0, max(size - self.crop, 0)))
            for centre, size in zip((xs[pick], ys[pick]), region.shape)
        ]
        return tuple(slice(start, start + self.crop) for start in starts)  # type: ignore[return-value]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        pair_index, z = self.slices[int(rng.integers(len(self.slices)))]
        pair = self.pairs[pair_index]
        window = self._window(pair.mask[:, :, z], rng)
        low = stack_slices(pair.low, z, self.in_slices)[(slice(None), *window)].astype(np.float64)
        full = stack_slices(pair.full, z, self.in_slices)[(slice(None), *window)].astype(np.float64)
        scale = float(np.exp(rng.uniform(*np.log(self.noise_scale))))
        low = full + scale * (low - full)
        if rng.random() < self.filter_probability:
            sigma = float(rng.uniform(*self.filter_sigma))
            low = ndimage.gaussian_filter(low, (0, sigma, sigma))
            full = ndimage.gaussian_filter(full, (0, sigma, sigma))
        region = pair.mask[:, :, z][window].astype(np.float64)
        if rng.random() < 0.5:
            low, full, region = low[:, ::-1], full[:, ::-1], region[::-1]
        if rng.random() < 0.5:
            low, full, region = low[:, :, ::-1], full[:, :, ::-1], region[:, ::-1]
        if rng.random() < 0.5:
            low, full, region = low.transpose(0, 2, 1), full.transpose(0, 2, 1), region.T
        centre = self.in_slices // 2
        difference = (low[centre] - full[centre])[region > 0]
        target = 0.5 * np.log2(np.mean(difference**2))
        image = np.concatenate([low, region[None]], axis=0).astype(np.float32)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image)),
            "label": torch.tensor([target], dtype=torch.float32),
        }
