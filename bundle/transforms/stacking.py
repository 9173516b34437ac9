"""2.5D input: adjacent axial slices stacked as channels, and random axial slice sampling for training."""

from __future__ import annotations

from typing import Any, Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, RandomizableTransform

from ..errors import InputDataError

__all__ = ["stack_adjacent_slices", "AxialSliceStackd", "RandAxialSlicesd", "RandTransposed", "source_name"]


def source_name(data: Any, default: str = "input") -> str:
    """The file a MetaTensor was loaded from, for error messages."""
    meta = getattr(data, "meta", None) or {}
    name = meta.get("filename_or_obj", default)
    return str(name[0] if isinstance(name, (list, tuple)) and name else name)


def stack_adjacent_slices(
    volume: torch.Tensor, num_slices: int, start: int = 0, stop: int | None = None
) -> torch.Tensor:
    """Stack adjacent axial slices as channels, replicating the edge slice at the volume's ends.

    Args:
        volume: (1, X, Y, Z) single-channel volume, axial axis last.
        num_slices: odd number of slices in each stack.
        start, stop: only build stacks for centre slices in [start, stop) (for streaming).

    Returns:
        (num_slices, X, Y, stop - start): channel k holds slice z + k - num_slices // 2 (clamped).
    """
    if volume.shape[0] != 1:
        raise ValueError(f"stack_adjacent_slices: expected one channel, got {volume.shape[0]}")
    depth = volume.shape[-1]
    stop = depth if stop is None else stop
    half = num_slices // 2
    centres = torch.arange(start, stop, device=volume.device)
    channels = [volume[0].index_select(-1, (centres + offset).clamp(0, depth - 1)) for offset in range(-half, half + 1)]
    return torch.stack(channels, dim=0)


class AxialSliceStackd(MapTransform):
    """Replace a (1, X, Y, Z) volume by its (num_slices, X, Y, Z) 2.5D stack (edges replicated)."""

    def __init__(self, keys: KeysCollection, num_slices: int = 3, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if num_slices < 1 or num_slices % 2 == 0:
            raise InputDataError(f"setting num_slices: expected an odd number >= 1, got {num_slices}")
        self.num_slices = num_slices

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            volume = d[key]
            stacked = stack_adjacent_slices(torch.as_tensor(volume), self.num_slices)
            if isinstance(volume, MetaTensor):
                stacked = MetaTensor(
                    stacked, meta=dict(volume.meta), applied_operations=list(volume.applied_operations)
                )
            d[key] = stacked
        return d


class RandAxialSlicesd(RandomizableTransform, MapTransform):
    """Sample `num_samples` random axial slices of a volume, skipping air slices.

    A slice is air when the reference key's maximum in it is below `air_fraction` of the volume's maximum.
    Returns a list of dicts whose `keys` hold 2D (C, X, Y) tensors (plain tensors: no per-slice metadata).

    Args:
        keys: volume keys (C, X, Y, Z) to slice.
        num_samples: slices drawn per call.
        reference_key: key that decides which slices are air (default: the last key, the full dose).
        air_fraction: threshold relative to the volume's maximum.
    """

    def __init__(
        self,
        keys: KeysCollection,
        num_samples: int = 4,
        reference_key: str | None = None,
        air_fraction: float = 0.05,
        allow_missing_keys: bool = False,
    ) -> None:
        RandomizableTransform.__init__(self, prob=1.0)
        MapTransform.__init__(self, keys, allow_missing_keys)
        if num_samples < 1:
            raise InputDataError(f"setting num_samples: expected >= 1, got {num_samples}")
        self.num_samples = num_samples
        self.reference_key = reference_key or self.keys[-1]
        self.air_fraction = air_fraction
        self._indices: np.ndarray = np.zeros(0, dtype=int)

    def tissue_slices(self, reference: torch.Tensor) -> np.ndarray:
        per_slice = torch.as_tensor(reference).amax(dim=tuple(range(reference.ndim - 1)))
        keep = per_slice > self.air_fraction * per_slice.max()
        return torch.nonzero(keep).flatten().cpu().numpy()

    def randomize(self, candidates: np.ndarray) -> None:
        self._indices = self.R.choice(candidates, size=self.num_samples, replace=len(candidates) < self.num_samples)

    def __call__(self, data: Mapping[Hashable, Any]) -> list[dict[Hashable, Any]]:
        d = dict(data)
        candidates = self.tissue_slices(d[self.reference_key])
        if len(candidates) == 0:
            raise InputDataError(f"{source_name(d[self.reference_key])}: every slice is air")
        self.randomize(candidates)
        samples = []
        for z in self._indices:
            sample = {k: v for k, v in d.items() if k not in self.keys}
            for key in self.key_iterator(d):
                sample[key] = torch.as_tensor(d[key])[..., int(z)].clone()
            sample["slice_index"] = int(z)
            samples.append(sample)
        return samples


class RandTransposed(RandomizableTransform, MapTransform):
    """Swap the two in-plane axes of (C, X, Y) images with probability `prob` (the paper's transposes)."""

    def __init__(self, keys: KeysCollection, prob: float = 0.5, allow_missing_keys: bool = False) -> None:
        RandomizableTransform.__init__(self, prob)
        MapTransform.__init__(self, keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize(None)
        if self._do_transform:
            for key in self.key_iterator(d):
                d[key] = torch.as_tensor(d[key]).transpose(-1, -2).contiguous()
        return d
