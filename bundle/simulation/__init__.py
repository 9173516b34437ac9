"""Count-level PET simulator: MNI152-based brain subjects, projector, Poisson/binomial dose, OSEM."""

from .dataset import ensure_dataset, simulate_dataset
from .presets import PRESETS, ReconstructionSettings, SimulationConfig

__all__ = ["PRESETS", "ReconstructionSettings", "SimulationConfig", "ensure_dataset", "simulate_dataset"]
