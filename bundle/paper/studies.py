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
        "cpu-reduced", folds=(0, 1, 2), num_epochs=4, overrides={"slices_per_volume": 32},
        description="CPU reduced protocol: the first 3 leave-one-out folds, 4 epochs of 32 slices per training volume "
                    "(a fifth of the CPU default profile's training), the rest of the CPU default profile unchanged",
    ),
    "full": Protocol("full", folds=None, num_epochs=None, description="all 9 folds at the profile's epochs (GPU)"),
}


def variant_slug(study: str, variant: str) -> str:
    """A folder- and MLflow-safe name for a study variant."""
    keep = "".join(c if c.isalnum() else "_" for c in variant.lower())
    while "__" in keep:
        keep = keep.replace("__", "_")
    return f"{study}-{keep.strip('_')}"
