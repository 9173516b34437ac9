"""Paired comparison of two methods over the same subjects: is A better than B, and by how much?

For per-subject values a_i and b_i the differences d_i = a_i - b_i give:
- the mean difference;
- its 95 % bootstrap confidence interval: subjects resampled with replacement (seeded, 10,000 resamples), the 2.5th and
  97.5th percentiles of the resampled means;
- the two-sided sign-test p value: the number of positive differences against Binomial(n, 1/2), ties left out.

"A beats B" is backed when the interval lies above zero (below zero for a metric where lower is better).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy.stats import binomtest

__all__ = ["PairedComparison", "fit_line", "paired_comparison"]


@dataclass(frozen=True)
class PairedComparison:
    """A - B over paired subjects."""

    n: int
    mean_difference: float
    ci_low: float
    ci_high: float
    wins: int  # subjects where A > B
    losses: int  # subjects where A < B
    sign_test_p: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def interval(self, unit: str = "") -> str:
        """`+x.xx<unit> (lo to hi)`: the mean difference and its 95 % interval, as the report tables print them."""
        return f"{self.mean_difference:+.2f}{unit} ({self.ci_low:+.2f} to {self.ci_high:+.2f})"

    def sentence(self, a: str, b: str, metric: str, unit: str = "", lower_is_better: bool = False) -> str:
        """`A vs B: +x (95 % CI lo to hi) unit, A better on w/n subjects, sign test p = ...`."""
        better = self.losses if lower_is_better else self.wins
        return (
            f"{a} vs {b}, {metric}: {self.mean_difference:+.3g}{unit} (95 % CI {self.ci_low:+.3g} to "
            f"{self.ci_high:+.3g}{unit}), {a} better on {better}/{self.n} subjects, sign test p = {self.sign_test_p:.3g}"
        )


def paired_comparison(
    a: Sequence[float], b: Sequence[float], resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> PairedComparison:
    """Mean of a - b with a percentile bootstrap confidence interval and the sign test."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(
            f"paired comparison: expected two equally long lists of >= 2 values, got {x.shape} and {y.shape}"
        )
    d = x - y
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(axis=1)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    p = binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
    return PairedComparison(d.size, float(d.mean()), float(low), float(high), wins, losses, float(p))


def fit_line(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Least-squares y = intercept + slope x: {intercept, slope}."""
    slope, intercept = np.polyfit(np.asarray(x, np.float64), np.asarray(y, np.float64), 1)
    return {"intercept": float(intercept), "slope": float(slope)}
