"""The bilateral and guided filters: checked against a direct computation and against their limits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bundle.baselines import make_baseline
from bundle.baselines.guided import guided_filter


def _direct_guided(p: np.ndarray, g: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter computed box by box with an explicit least-squares fit (interior voxels only)."""
    n = p.shape[0]
    a, b = np.full(p.shape, np.nan), np.full(p.shape, np.nan)
    for k in np.ndindex(*p.shape):
        if all(r <= c < n - r for c in k):
            window = tuple(slice(c - r, c + r + 1) for c in k)
            gw, pw = g[window].ravel(), p[window].ravel()
            # minimise sum (a g + b - p)^2 + eps a^2 over the window (the ridge is per voxel: |w| eps)
            design = np.stack([gw, np.ones_like(gw)], axis=1)
            lhs = design.T @ design + np.diag([eps * gw.size, 0.0])
            a[k], b[k] = np.linalg.solve(lhs, design.T @ pw)
    out = np.full(p.shape, np.nan)
    for i in np.ndindex(*p.shape):
        if all(2 * r <= c < n - 2 * r for c in i):
            window = tuple(slice(c - r, c + r + 1) for c in i)
            out[i] = np.mean(a[window]) * g[i] + np.mean(b[window])
    return out


def test_guided_filter_matches_a_direct_box_by_box_least_squares_fit():
    rng = np.random.default_rng(0)
    p = rng.random((9, 9, 9))
    g = p + 0.3 * rng.random((9, 9, 9))
    expected = _direct_guided(p, g, 1, 0.01)
    got = guided_filter(p, g, (3, 3, 3), 0.01)
    inner = np.isfinite(expected)
    assert inner.sum() == 5**3
    np.testing.assert_allclose(got[inner], expected[inner], rtol=1e-9, atol=1e-9)


def test_guided_filter_limits_identity_and_box_mean():
    rng = np.random.default_rng(1)
    volume = rng.gamma(2.0, 1.0, (12, 12, 10)).astype(np.float32)
    baseline = make_baseline("guided")
    nearly_identity = baseline(volume, (2.0, 2.0, 2.0), radius_mm=2.0, eps=1e-9)
    np.testing.assert_allclose(nearly_identity, volume, rtol=1e-4)
    smooth = baseline(volume, (2.0, 2.0, 2.0), radius_mm=2.0, eps=1e9)
    box = ndimage.uniform_filter(
        ndimage.uniform_filter(volume.astype(np.float64), 3, mode="nearest"), 3, mode="nearest"
    )
    np.testing.assert_allclose(smooth, box, rtol=1e-4)


def test_bilateral_filter_keeps_an_edge_a_gaussian_blurs_and_is_a_gaussian_without_range_limit():
    rng = np.random.default_rng(2)
    step = np.zeros((24, 24, 16), np.float32)
    step[12:] = 4.0
    noisy = step + rng.normal(0, 0.2, step.shape).astype(np.float32) + 1.0
    bilateral = make_baseline("bilateral")
    kept = bilateral(noisy, (2.0, 2.0, 2.0), domain_sigma_mm=3.0, range_sigma=0.1)
    gaussian = ndimage.gaussian_filter(noisy, 1.5, mode="nearest")
    jump = lambda x: float(np.mean(x[12:14]) - np.mean(x[10:12]))  # noqa: E731 - the edge's height
    assert jump(kept) > 0.95 * jump(step) and jump(gaussian) < 0.8 * jump(step)
    assert np.std(kept[2:9, 4:20, 4:12]) < 0.5 * np.std(noisy[2:9, 4:20, 4:12])  # flat region smoothed
    wide = bilateral(noisy, (2.0, 2.0, 2.0), domain_sigma_mm=3.0, range_sigma=1e6)
    inner = (slice(6, 18), slice(6, 18), slice(5, 11))
    assert np.corrcoef(wide[inner].ravel(), gaussian[inner].ravel())[0, 1] > 0.99
    assert wide[inner].mean() == pytest.approx(gaussian[inner].mean(), rel=1e-3)


def test_bm4d_spectrum_and_correlation_width_agree_with_scipy_filtered_noise_and_bm4d_denoises():
    bm4d_filter = pytest.importorskip("bundle.baselines.bm4d_filter")
    rng = np.random.default_rng(0)
    white = rng.standard_normal((48, 48, 24))
    everywhere = np.ones(white.shape, dtype=bool)
    assert bm4d_filter.noise_correlation_fwhm_mm(white, 0 * white, everywhere, (2.0, 2.0, 2.0)) < 0.5
    for fwhm in (4.0, 6.0):  # scipy's Gaussian filter of white noise: the width is read back from the noise alone
        blurred = ndimage.gaussian_filter(white, fwhm / np.sqrt(8 * np.log(2)) / 2.0)
        assert bm4d_filter.noise_correlation_fwhm_mm(blurred, 0 * blurred, everywhere, (2.0,) * 3) == pytest.approx(
            fwhm, rel=0.05
        )
    # noise drawn from the spectrum bm4d is given has the stated SD and width
    psd = bm4d_filter.correlated_noise_psd(white.shape, 0.1, 6.0, (2.0, 2.0, 2.0))
    drawn = np.real(np.fft.ifftn(np.fft.fftn(white) * np.sqrt(psd / white.size)))
    assert drawn.std() == pytest.approx(0.1, rel=0.05)
    assert bm4d_filter.noise_correlation_fwhm_mm(drawn, 0 * drawn, everywhere, (2.0,) * 3) == pytest.approx(
        6.0, rel=0.05
    )
    # on a piecewise-constant phantom with such noise, BM4D given the matched spectrum removes most of it
    phantom = np.zeros((40, 40, 16), dtype=np.float32)
    phantom[8:32, 8:32, 2:14], phantom[14:22, 14:22, 5:11] = 1.0, 2.0
    noise = np.real(
        np.fft.ifftn(
            np.fft.fftn(rng.standard_normal(phantom.shape))
            * np.sqrt(bm4d_filter.correlated_noise_psd(phantom.shape, 0.2, 5.0, (2.0,) * 3) / phantom.size)
        )
    )
    noisy = (phantom + noise).astype(np.float32)
    out = make_baseline("bm4d")(noisy, (2.0, 2.0, 2.0), sigma=0.2 / 2.0, noise_fwhm_mm=5.0)  # /2: 99.5th pct ~ 2
    rmse = lambda a: float(np.sqrt(np.mean((a - phantom) ** 2)))  # noqa: E731
    assert rmse(out) < 0.5 * rmse(noisy)
    assert bm4d_filter._slabs([3, 5, 12], 2, 14) == [(1, 8), (10, 14)]
