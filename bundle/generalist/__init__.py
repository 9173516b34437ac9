"""The generalist model's evaluation: every dose level of every test set against the input and a tuned Gaussian,
with lesion bias and paired intervals, and the issue's targets checked one by one."""

from ..deploy.trained_denoiser import TrainedDenoiser
from .study import evaluate_test_sets, tuned_filters, tuned_gaussians
from .targets import target_rows

__all__ = ["TrainedDenoiser", "evaluate_test_sets", "target_rows", "tuned_filters", "tuned_gaussians"]
