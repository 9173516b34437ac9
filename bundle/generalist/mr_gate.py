"""How far a gated MR-guided network (`networks.GuideGate`) opens its MR channels, by lesion kind.

Each study of a test cohort is denoised through the shipped inference path (`TrainedDenoiser`) while a hook records
the gate of every axial slice; the gate volume, cropped of the network's padding, is averaged inside each lesion of
the cohort's lesion map and over the brain outside lesions. A gate that shuts the MR where it shows a lesion the PET
does not would read far lower in MR-only lesions than in the brain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..data import dose_key, lesion_kinds, load_datalist
from ..errors import InputDataError
from ..io import load_ras_volume

__all__ = ["BRAIN", "gate_by_lesion_kind", "gate_volume"]

BRAIN = "brain outside lesions"


def gate_volume(slice_gates: Sequence[torch.Tensor], shape: Sequence[int]) -> np.ndarray:
    """(guide channels, X, Y, Z) gate volume from the per-batch (slices, guide channels, X', Y') gates of a study's
    axial slices in order, cropped as the network crops its padding (`shape`: the study's X, Y, Z on its grid)."""
    gates = torch.cat([g.float() for g in slice_gates], 0)
    x, y, z = (int(s) for s in shape)
    if gates.shape[0] != z:
        raise InputDataError(f"gate reading: {gates.shape[0]} gated slices for a study of {z} slices")
    top, left = (gates.shape[-2] - x) // 2, (gates.shape[-1] - y) // 2
    return gates[..., top : top + x, left : left + y].permute(1, 2, 3, 0).numpy()


def gate_by_lesion_kind(
    checkpoints: str | Path, datalist: str | Path, drfs: Sequence[float], subjects: int | None = None
) -> list[dict]:
    """One row per (DRF, lesion kind or `BRAIN`, guide channel): the mean over lesions (or subjects) of the mean gate
    inside it, with its min, max and count, for the first `subjects` of `datalist` (all by default)."""
    from ..deploy.trained_denoiser import TrainedDenoiser

    denoiser = TrainedDenoiser(checkpoints, precision="fp32")
    gate = getattr(denoiser.denoiser.network, "guide_gate", None)
    if gate is None or not denoiser.mr_keys:
        raise InputDataError(f"{checkpoints}: not a gated MR-guided run (its network has no guide gate)")
    captured: list[torch.Tensor] = []
    hook = gate.register_forward_hook(lambda module, args, out: captured.append(module.gate(args[0]).float()))
    kinds_of, values = lesion_kinds(datalist), {}
    try:
        for item in load_datalist(datalist)[:subjects]:
            lesions = load_ras_volume(item["lesion"]).astype(np.int64)
            brain = (load_ras_volume(item["mask"]) > 0) & (lesions == 0)
            regions = {
                label: (kind, lesions == int(label)) for label, kind in kinds_of.get(item["subject"], {}).items()
            }
            for drf in drfs:
                captured.clear()
                denoiser(item[dose_key(drf)], float(drf), item)
                volume = gate_volume(captured, lesions.shape)
                for channel, name in enumerate(denoiser.mr_keys):
                    values.setdefault((float(drf), BRAIN, name), []).append(float(volume[channel][brain].mean()))
                    for kind, region in regions.values():
                        if region.any():
                            values.setdefault((float(drf), kind, name), []).append(
                                float(volume[channel][region].mean())
                            )
    finally:
        hook.remove()
    return [
        {
            "drf": drf,
            "region": region,
            "channel": name,
            "n": len(v),
            "mean": float(np.mean(v)),
            "min": min(v),
            "max": max(v),
        }
        for (drf, region, name), v in sorted(values.items())
    ]
