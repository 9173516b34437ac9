"""The paper's ablation studies (Sections III.B-D), read from the override files in configs/ablations/, and the
protocols they run under."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputDataError
from ..io import read_json

__all__ = ["ABLATIONS", "DEFAULT_VARIANT", "PROTOCOLS", "Protocol", "load_ablations", "variant_slug"]

DEFAULT_VARIANT = "proposed (R+C, 3 slices, np=3, nc=2, L1)"

ABLATIONS_DIR = Path(__file__).resolve().parents[2] / "configs" / "ablations"


def load_ablations(folder: str | Path = ABLATIONS_DIR) -> dict[str, dict[str, dict[str, Any]]]:
    """Every study of `folder` (`<study>.json`: description, order, variants as config overrides), in study order:
    {study: {variant: overrides}}."""
    studies = []
    for path in sorted(Path(folder).glob("*.json")):
        content = read_json(path, "ablation study")
        variants = content.get("variants") if isinstance(content, dict) else None
        if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
            raise InputDataError(f"ablation study {path}: expected 'variants' mapping names to config overrides")
        studies.append((content.get("order", len(studies)), path.stem, variants))
    return {name: variants for _, name, variants in sorted(studies, key=lambda t: (t[0], t[1]))}


ABLATIONS = load_ablations()


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
        "cpu-reduced",
        folds=(0,),
        num_epochs=5,
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
