"""The paper's ablation studies (Sections III.B-D) as config overrides, and the protocols they run under."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ABLATIONS", "DEFAULT_VARIANT", "Protocol", "PROTOCOLS", "variant_slug"]

DEFAULT_VARIANT = "proposed (R+C, 3 slices, np=3, nc=2, L1)"

ABLATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "skip_connections": {
        "R+C (both)": {},
        "C only (concatenate)": {"residual": False},
        "R only (residual)": {"concat_skips": False},
        "none": {"residual": False, "concat_skips": False},
    },
    "input_slices": {f"{n} slice{'s' if n > 1 else ''}": {"num_slices": n} for n in (1, 3, 5, 7)},
    "depth": {
        f"np={p}, nc={c}": {"num_poolings": p, "convs_per_stage": c} for p in (2, 3, 4, 5) for c in (1, 2, 3)
    },
    "loss": {"L1": {"loss_name": "l1"}, "L2": {"loss_name": "l2"}, "SSIM": {"loss_name": "ssim"},
             "MS-SSIM": {"loss_name": "ms-ssim"}},
    # not an ablation of the paper: the proposed config under other seeds, to show which differences the protocol resolves
    "repeatability": {"seed 0": {"seed": 0}, "seed 1": {"seed": 1}, "seed 2": {"seed": 2}},
}


@dataclass(frozen=True)
class Protocol:
    """How an ablation study is run: which folds and how many epochs (None: the profile's)."""

    name: str
    folds: tuple[int, ...] | None
    num_epochs: int | None
    overrides: dict[str, Any] = field(default_factory=dict)
    description: str = ""


PROTOCOLS = {
    "cpu-reduced": Protocol(
        "cpu-reduced", folds=(0,), num_epochs=5,
        description="CPU reduced protocol: leave-one-out fold 0 only (test subject sub-001), 5 epochs instead of 20 "
                    "(a quarter of the CPU default profile's training, with the same learning-rate range compressed "
                    "into 5 epochs), the rest of the CPU default profile unchanged",
    ),
    "full": Protocol("full", folds=None, num_epochs=None, description="all 9 folds at the profile's epochs (GPU)"),
}


def variant_slug(study: str, variant: str) -> str:
    """A folder- and MLflow-safe name for a study variant."""
    keep = "".join(c if c.isalnum() else "_" for c in variant.lower())
    while "__" in keep:
        keep = keep.replace("__", "_")
    return f"{study}-{keep.strip('_')}"
