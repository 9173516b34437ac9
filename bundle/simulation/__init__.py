"""Count-level PET simulator: MNI152-based brain subjects, projector, Poisson/binomial dose, OSEM."""

from .cohorts import COHORTS, ensure_cohort
from .dataset import ensure_dataset, simulate_dataset
from .presets import PRESETS, ReconstructionSettings, SimulationConfig

__all__ = [
    "COHORTS",
    "PRESETS",
    "ensure_cohort",
    "ReconstructionSettings",
    "SimulationConfig",
    "ensure_dataset",
    "simulate_dataset",
]
