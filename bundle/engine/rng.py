"""The random state of a training run (torch, numpy, python and every MONAI random transform), as a
checkpointable object whose state dict loads with `torch.load(weights_only=True)`."""

from __future__ import annotations

import random
from typing import Any, Iterable

import numpy as np
import torch
from monai.transforms import Compose, Randomizable

__all__ = ["TrainingRandomState"]


def _random_transforms(transforms: Any) -> list[Randomizable]:
    """Every Randomizable transform inside (nested) Compose objects, in a stable order."""
    found: list[Randomizable] = []

    def walk(t: Any) -> None:
        if isinstance(t, Compose):
            for child in t.transforms:
                walk(child)
        elif isinstance(t, (list, tuple)):
            for child in t:
                walk(child)
        if isinstance(t, Randomizable) and not isinstance(t, Compose):
            found.append(t)
        elif isinstance(t, Compose):
            found.append(t)  # Compose itself holds an R used by OneOf/SomeOf

    walk(transforms)
    return found


def _np_state_to_tensors(state: tuple) -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = state
    return {
        "name": name,
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def _np_state_from_tensors(d: dict[str, Any]) -> tuple:
    return (d["name"], d["keys"].numpy().astype(np.uint32), d["pos"], d["has_gauss"], d["cached"])


class TrainingRandomState:
    """Checkpointable random state: torch CPU (and CUDA) generators, numpy and python globals, the private
    generators of the given MONAI transforms, and those of `samplers` (e.g. `DeviceSliceBatches`)."""

    def __init__(self, transforms: Iterable[Any] | Any = (), samplers: Iterable[Any] = ()) -> None:
        self.transforms = _random_transforms(transforms)
        self.samplers = list(samplers)  # objects with their own generator (state_dict / load_state_dict)

    def state_dict(self) -> dict[str, Any]:
        py = random.getstate()
        state = {
            "torch": torch.get_rng_state(),
            "numpy": _np_state_to_tensors(np.random.get_state()),
            "python": {"version": py[0], "state": torch.tensor(py[1], dtype=torch.int64), "gauss": py[2]},
            "transforms": [_np_state_to_tensors(t.R.get_state()) for t in self.transforms],
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        if self.samplers:
            state["samplers"] = [s.state_dict() for s in self.samplers]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        np.random.set_state(_np_state_from_tensors(state["numpy"]))
        py = state["python"]
        random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
        if len(state["transforms"]) != len(self.transforms):
            raise ValueError(
                f"random state: checkpoint has {len(state['transforms'])} random transforms, the pipeline has {len(self.transforms)}"
            )
        for t, s in zip(self.transforms, state["transforms"]):
            t.R.set_state(_np_state_from_tensors(s))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        for sampler, saved in zip(self.samplers, state.get("samplers", [])):
            sampler.load_state_dict(saved)
