"""Training batches made where the network runs: the training volumes are cached on the device once, and every batch
of 2.5D stacks is gathered there at once (random tissue slices, adjacent slices as channels with the edge slice
replicated, random flips along both in-plane axes and random in-plane transposes), with no per-sample work and no
host synchronisation in the loop.

It is the batched form of the CPU pipeline of `configs/train.json` (AxialSliceStackd, RandAxialSlicesd, two RandFlipd,
RandTransposed): the same distribution of samples, not the same samples. `configs/profiles/device_batches.json`
switches a training config to it; the CPU default keeps its own pipeline (and its numbers).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import torch

from ..errors import InputDataError

__all__ = ["DeviceSliceBatches"]


class DeviceSliceBatches:
    """An epoch of `ceil(n_volumes * slices_per_volume / batch_slices)` batches `{"image": (B, S + E, X, Y),
    "label": (B, 1, X, Y)}` on `device`; each volume gives exactly `slices_per_volume` slices per epoch.

    Args:
        volumes: a dataset whose items hold `image` and `label` as (1, X, Y, Z) volumes after the deterministic
            preprocessing (scaled), and the `extra_keys` (e.g. t1) likewise; volumes may differ in shape (smaller
            ones are zero-padded in-plane, which is air).
        num_slices: odd number of adjacent PET slices per stack (S); extra channels are taken at the centre slice.
        slices_per_volume: slices each volume gives per epoch.
        batch_slices: slices per batch (B; the last batch of an epoch may be smaller).
        device: where volumes are cached and batches are made.
        seed: seed of the device generator (rank is added under DDP).
        air_fraction: a slice is air when the label's maximum in it is below this fraction of the volume's maximum
            (as `RandAxialSlicesd`).
        extra_keys: extra input channels (E), concatenated after the PET stack.
        augment: random flips and transposes (False: plain slices, for tests).
    """

    def __init__(
        self,
        volumes: Sequence[dict[str, Any]],
        num_slices: int = 3,
        slices_per_volume: int = 64,
        batch_slices: int = 16,
        device: torch.device | str = "cpu",
        seed: int = 0,
        air_fraction: float = 0.05,
        extra_keys: Sequence[str] = (),
        augment: bool = True,
    ) -> None:
        if num_slices < 1 or num_slices % 2 == 0:
            raise InputDataError(f"setting num_slices: expected an odd number >= 1, got {num_slices}")
        self.device = torch.device(device)
        self.num_slices, self.slices_per_volume, self.batch_slices = num_slices, slices_per_volume, batch_slices
        self.extra_keys, self.augment = list(extra_keys), augment
        items = [volumes[i] for i in range(len(volumes))]
        if not items:
            raise InputDataError("device batches: no training volumes")
        shapes = [tuple(torch.as_tensor(item["image"]).shape[1:]) for item in items]
        size = [max(s[k] for s in shapes) for k in range(3)]
        keys = ["image", "label", *self.extra_keys]
        self.volumes = {k: torch.zeros((len(items), *size), dtype=torch.float32, device=self.device) for k in keys}
        self.depth = torch.tensor([s[2] for s in shapes], device=self.device)
        tissue = []
        for v, item in enumerate(items):
            x, y, z = shapes[v]
            for k in keys:
                self.volumes[k][v, :x, :y, :z] = torch.as_tensor(item[k], dtype=torch.float32)[0].to(self.device)
            per_slice = self.volumes["label"][v, :, :, :z].amax(dim=(0, 1))
            slices = torch.nonzero(per_slice > air_fraction * per_slice.max()).flatten()
            if slices.numel() == 0:
                raise InputDataError(f"training volume {v}: every slice is air")
            tissue.append(slices)
        # tissue slices of every volume in one padded table: row v holds volume v's slices, `counts[v]` of them
        self.counts = torch.tensor([len(t) for t in tissue], device=self.device)
        self.tissue = torch.zeros((len(items), int(self.counts.max())), dtype=torch.long, device=self.device)
        for v, t in enumerate(tissue):
            self.tissue[v, : len(t)] = t
        self.square = size[0] == size[1]
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed) + rank)

    def __len__(self) -> int:
        return math.ceil(len(self.depth) * self.slices_per_volume / self.batch_slices)

    def _uniform(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.generator, device=self.device)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        order = torch.arange(len(self.depth), device=self.device).repeat_interleave(self.slices_per_volume)
        order = order[torch.randperm(len(order), generator=self.generator, device=self.device)]
        for start in range(0, len(order), self.batch_slices):
            yield self.batch(order[start : start + self.batch_slices])

    def batch(self, volume_index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The batch of one random tissue slice of each listed volume."""
        n = len(volume_index)
        pick = (self._uniform(n) * self.counts[volume_index]).long().clamp(max=self.tissue.shape[1] - 1)
        centre = self.tissue[volume_index, pick]
        half = self.num_slices // 2
        offsets = torch.arange(-half, half + 1, device=self.device)
        last = (self.depth[volume_index] - 1)[:, None]
        z = torch.minimum((centre[:, None] + offsets[None, :]).clamp(min=0), last)  # (B, S), edges replicated
        image = self.volumes["image"][volume_index[:, None], :, :, z]  # (B, S, X, Y)
        extras = [self.volumes[k][volume_index, :, :, centre][:, None] for k in self.extra_keys]
        image = torch.cat([image, *extras], dim=1) if extras else image
        label = self.volumes["label"][volume_index, :, :, centre][:, None]
        if self.augment:
            image, label = self._augment(image, label)
        return {"image": image.contiguous(), "label": label.contiguous()}

    def _augment(self, image: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flip each sample along X and along Y with probability 1/2, and transpose it with probability 1/2."""
        n = image.shape[0]
        for dim in (-2, -1):
            flip = (self._uniform(n) < 0.5)[:, None, None, None]
            image, label = torch.where(flip, image.flip(dim), image), torch.where(flip, label.flip(dim), label)
        if self.square:
            swap = (self._uniform(n) < 0.5)[:, None, None, None]
            image = torch.where(swap, image.transpose(-1, -2), image)
            label = torch.where(swap, label.transpose(-1, -2), label)
        return image, label

    def state_dict(self) -> dict[str, Any]:
        """The generator's state, so a resumed run continues with the same batches."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
