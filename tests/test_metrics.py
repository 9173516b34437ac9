"""The paper's masked metrics against scikit-image's independent implementations."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from bundle.errors import InputDataError
from bundle.metrics import check_mask, estimate_support_mask, image_metrics, masked_ssim, slice_metrics


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :48]
    ref = np.zeros((48, 48, 6), dtype=np.float32)
    for z in range(6):
        ref[..., z] = 1000 * np.exp(-((xx - 24) ** 2 + (yy - 22) ** 2) / (2 * (9 + z) ** 2)) + 200
    noisy = ref + rng.normal(0, 60, ref.shape).astype(np.float32)
    mask = ((xx - 24) ** 2 + (yy - 22) ** 2 < 18**2)[..., None].repeat(6, axis=2)
    return noisy, ref, mask


def test_nrmse_and_psnr_match_scikit_image(pair):
    x, y, m = pair
    ours = image_metrics(x, y, m)
    assert ours["nrmse"] == pytest.approx(normalized_root_mse(y[m], x[m], normalization="euclidean"), rel=1e-9)
    assert ours["psnr"] == pytest.approx(peak_signal_noise_ratio(y[m], x[m], data_range=float(y[m].max())), rel=1e-9)


def test_ssim_matches_scikit_image_map_over_the_mask(pair):
    x, y, m = pair
    peak = float(y[m].max())
    maps = np.stack(
        [
            structural_similarity(
                y[..., z].astype(np.float64),
                x[..., z].astype(np.float64),
                data_range=peak,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                full=True,
            )[1]
            for z in range(y.shape[2])
        ],
        axis=-1,
    )
    inner = np.zeros_like(m)
    inner[5:-5, 5:-5] = True
    assert masked_ssim(x, y, m) == pytest.approx(float(maps[m & inner].mean()), abs=1e-5)
    # identical images score 1, and noisier images score lower
    assert masked_ssim(y, y, m) == pytest.approx(1.0, abs=1e-6)
    assert masked_ssim(y + 3 * (x - y), y, m) < masked_ssim(x, y, m)


def test_metrics_are_scale_invariant(pair):
    x, y, m = pair
    a, b = image_metrics(x, y, m), image_metrics(1000 * x, 1000 * y, m)
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-5)


def test_slice_metrics_use_the_slice_peak(pair):
    x, y, m = pair
    rows = slice_metrics(x, y, m)
    assert [r["slice"] for r in rows] == list(range(6))
    z = 2
    assert rows[z]["psnr"] == pytest.approx(
        peak_signal_noise_ratio(
            y[..., z][m[..., z]], x[..., z][m[..., z]], data_range=float(y[..., z][m[..., z]].max())
        ),
        rel=1e-9,
    )


def test_support_mask_and_mask_checks(pair):
    _, y, m = pair
    est = estimate_support_mask(y)
    assert est.shape == y.shape and 0 < est.mean() < 1
    with pytest.raises(InputDataError, match="empty"):
        check_mask(np.zeros((4, 4, 4)))
    with pytest.raises(InputDataError, match="whole image"):
        check_mask(np.ones((4, 4, 4)))


def test_white_matter_noise_reads_the_noise_where_the_cv_also_reads_the_texture():
    from bundle.metrics import white_matter_cv, white_matter_noise

    rng = np.random.default_rng(5)
    texture = 1.0 + 0.15 * rng.standard_normal((20, 20, 20))  # the anatomy's own variation
    noisy = texture + 0.02 * rng.standard_normal(texture.shape)
    region = np.zeros(texture.shape, bool)
    region[2:18, 2:18, 2:18] = True
    error = (noisy - texture)[region]
    assert white_matter_noise(noisy, texture, region) == pytest.approx(np.std(error, ddof=1) / texture[region].mean())
    assert white_matter_noise(noisy, texture, region) == pytest.approx(0.02, rel=0.1)
    assert white_matter_cv(noisy, region) == pytest.approx(0.15, rel=0.1)
