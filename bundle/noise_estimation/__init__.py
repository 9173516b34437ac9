"""Reading a low-dose PET image's noise level from the image alone (a small CNN trained on measured pairs), and the
dose code it gives a dose-conditioned model. Training (`noise_estimation.training`, Ignite) is imported on its own,
so inference never loads the training engine."""

from .estimator import NoiseEstimator, equivalent_drf, volume_noise_log2
from .image_code import CODE_DRF_SUFFIX, ImageCodeDrfd
from .samples import NoisePair, NoiseSliceSamples, load_noise_pairs, stack_slices

__all__ = [
    "CODE_DRF_SUFFIX",
    "ImageCodeDrfd",
    "NoiseEstimator",
    "NoisePair",
    "NoiseSliceSamples",
    "equivalent_drf",
    "load_noise_pairs",
    "stack_slices",
    "volume_noise_log2",
]
