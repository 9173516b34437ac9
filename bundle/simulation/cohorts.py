"""Named cohorts of simulated subjects: the generalist model's training cohort and its test cohorts.

Each cohort is a set of `SimulationConfig` settings and a default folder. Cohorts use their own seeds, so no
subject of one is a subject of another (nor of the default dataset, seed 0). Command-line options override a
cohort's settings (`scripts/simulate.py --cohort generalist-train --subjects 4 --preset tiny` for a smoke run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigValueError
from .presets import DOSE_CHAIN

__all__ = ["COHORTS", "Cohort", "cohort", "ensure_cohort"]


@dataclass(frozen=True)
class Cohort:
    """A named cohort: what it is for, where it goes and its simulation settings."""

    name: str
    purpose: str
    output_dir: str
    settings: dict[str, Any] = field(default_factory=dict)
    workers: int = 2  # subjects simulated at a time (the cohorts' inverse-CDF counts do not depend on it)


_FAST = {"resolution_space": "sinogram"}  # the randomised scanners' fine grids need the cheaper resolution model
_WORLD = {"drfs": DOSE_CHAIN, "lesions": "mix", "count_sampler": "inverse_cdf", "anatomy": "varied"}

COHORTS: dict[str, Cohort] = {
    "generalist-train": Cohort(
        "generalist-train",
        "training cohort of the generalist model: varied anatomy, randomised scanner and protocol, counts x(0.5-1.5)",
        "data/cohorts/generalist_train",
        {**_WORLD, "n_subjects": 40, "seed": 1000, "scanner": "randomised", "count_spread": 0.5, **_FAST},
    ),
    "generalist-train-lesions": Cohort(
        "generalist-train-lesions",
        "lesion-rich training cohort: the generalist-train subjects (same seed: same anatomy, scanners and counts) "
        "with 4-8 hot lesions each (5-20 mm, 1.5-4x grey matter, PET-only foci among them; "
        "`lesions.RichLesionRecipe`) instead of the mix, for objectives that must keep uptake",
        "data/cohorts/generalist_train_lesions",
        {
            **_WORLD,
            "lesions": "rich",
            "n_subjects": 40,
            "seed": 1000,
            "scanner": "randomised",
            "count_spread": 0.5,
            **_FAST,
        },
    ),
    "generalist-train-broad": Cohort(
        "generalist-train-broad",
        "lesion-rich training cohort with broadened physics: the generalist-train-lesions subjects (same seed: same "
        "anatomy, lesions, grids, resolution cores, post-filters and counts) each also drawing a detector response "
        "with a wide tail, OSEM with or without resolution modelling, 2-4 iterations of 14 or 28 subsets, and "
        "scatter 25-45 % and randoms 5-25 % of the prompts (`scanner_draw.draw_physics`), for a model that must "
        "learn PET rather than one simulator's physics",
        "data/cohorts/generalist_train_broad",
        {
            **_WORLD,
            "lesions": "rich",
            "n_subjects": 40,
            "seed": 1000,
            "scanner": "randomised",
            "physics_spread": "broad",
            "count_spread": 0.5,
            **_FAST,
        },
    ),
    "new-anatomy": Cohort(
        "new-anatomy",
        "test cohort: brains the model has not seen (varied anatomy, other seeds) on the default dataset's scanner",
        "data/cohorts/new_anatomy",
        {**_WORLD, "n_subjects": 6, "seed": 2000},
    ),
    "new-scanners": Cohort(
        "new-scanners",
        "test cohort: varied anatomy on randomised scanners and protocols, other seeds than the training cohort",
        "data/cohorts/new_scanners",
        {**_WORLD, "n_subjects": 6, "seed": 3000, "scanner": "randomised", "count_spread": 0.5, **_FAST},
    ),
    "generalist-train-native": Cohort(
        "generalist-train-native",
        "tuning cohort off the training grid: the first training subjects stored on their own drawn grids, for "
        "fitting how much of a study's sub-2 mm detail inference keeps (never a test set)",
        "data/cohorts/generalist_train_native",
        {
            **_WORLD,
            "n_subjects": 6,
            "seed": 1000,
            "scanner": "randomised",
            "count_spread": 0.5,
            "grid": "native",
            **_FAST,
        },
    ),
    "new-scanners-native": Cohort(
        "new-scanners-native",
        "test cohort off the training grid: the new-scanners subjects stored on their own drawn grids (1.2-3 mm "
        "pixels, 2-3.3 mm slices), as a site's studies arrive",
        "data/cohorts/new_scanners_native",
        {
            **_WORLD,
            "n_subjects": 6,
            "seed": 3000,
            "scanner": "randomised",
            "count_spread": 0.5,
            "grid": "native",
            **_FAST,
        },
    ),
}


def cohort(name: str) -> Cohort:
    """The cohort called `name`, or a one-line error naming the choices."""
    if name not in COHORTS:
        raise ConfigValueError(f"setting cohort: unknown cohort {name!r}; choose one of {sorted(COHORTS)}")
    return COHORTS[name]


def ensure_cohort(dataset_dir: str, name: str) -> str:
    """The cohort's datalist in `dataset_dir`, simulated first (with the cohort's workers) when it is missing; used by
    the generalist profile so that it runs on a fresh clone."""
    from pathlib import Path

    from .dataset import DATALIST_NAME, simulate_dataset
    from .presets import SimulationConfig

    chosen = cohort(name)
    datalist = Path(dataset_dir) / DATALIST_NAME
    if not datalist.is_file():
        simulate_dataset(dataset_dir, SimulationConfig(**chosen.settings), workers=chosen.workers)
    return str(datalist)
