"""Count-level PET simulator: MNI152-based brain subjects, projector, Poisson/binomial dose, OSEM."""

from .cohorts import COHORTS, ensure_cohort
from .dataset import ensure_dataset, simulate_dataset
from .mr_cohort import ensure_mr_cohort, simulate_mr_cohort
from .presets import PRESETS, ReconstructionSettings, SimulationConfig

__all__ = [
    "COHORTS",
    "PRESETS",
    "ensure_cohort",
    "ReconstructionSettings",
    "SimulationConfig",
    "ensure_dataset",
    "ensure_mr_cohort",
    "simulate_dataset",
    "simulate_mr_cohort",
]
