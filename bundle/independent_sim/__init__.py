"""A second, independent PET simulator, for testing only: nothing of the bundle is ever trained or tuned on it.

It shares no code with `bundle.simulation` beyond reading the MNI152 templates that nilearn ships: its own anatomy
model and lesion recipe (`phantom`), its own projector (scikit-image's Radon transform), point-spread function (a
Gaussian core with exponential tails), attenuation, scatter, randoms, count scale and a slice-by-slice OSEM with a
post-filter (`scanner`), on grids drawn per subject (1.8-2.8 mm pixels, 2.4-3.3 mm slices). A model that learnt
PET rather than the bundle's own simulator should do about as well on it (docs/simulation.md).

    python scripts/simulate_independent.py --output-dir data/cohorts/second_simulator --subjects 6
"""

from .cohort import simulate_independent_cohort

__all__ = ["simulate_independent_cohort"]
