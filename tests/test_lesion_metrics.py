"""Lesion quantification, regional metrics, the paper's convention and paired statistics, each checked against an
independent computation (numpy by hand, scikit-image, scipy or MONAI)."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from helpers import REPO_ROOT
from scipy import stats
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio

from bundle.errors import InputDataError
from bundle.metrics import paired_comparison, paper_convention_metrics, regional_metrics, ssim_map_2d, suv_peak
from bundle.metrics.lesion import check_lesion_map, contrast_recovery, lesion_bias, peak_sphere
from bundle.metrics.regions import brain_regions

VOXEL = (2.0, 2.0, 3.0)


def _phantom(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A noisy 40 x 40 x 20 volume with a brain ball and two hot lesions (labels 1 and 2)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(n) * v for n, v in zip((40, 40, 20), VOXEL)], indexing="ij"))
    centre = np.array([39.0, 39.0, 28.5])[:, None, None, None]
    brain = np.sqrt(((grid - centre) ** 2).sum(0)) < 30
    lesions = np.zeros(brain.shape, np.int16)
    for label, c, r in ((1, (30.0, 40.0, 27.0), 6.0), (2, (52.0, 36.0, 30.0), 4.0)):
        lesions[np.sqrt(((grid - np.array(c)[:, None, None, None]) ** 2).sum(0)) < r] = label
    image = np.where(brain, 10.0, 2.0) + np.where(lesions > 0, 25.0, 0.0) + rng.normal(0, 0.3, brain.shape)
    return image, brain, lesions


def _brute_force_peak(image: np.ndarray, lesion: np.ndarray) -> float:
    """Every centre voxel in the lesion, the mean of every voxel within the 1 mL sphere's radius."""
    radius = (3000.0 / (4 * math.pi)) ** (1 / 3)
    coords = np.argwhere(np.ones(image.shape, bool)) * np.array(VOXEL)
    values = image.reshape(-1)
    best = -np.inf
    for centre in np.argwhere(lesion):
        inside = np.sum((coords - centre * np.array(VOXEL)) ** 2, axis=1) <= radius**2
        best = max(best, values[inside].mean())
    return float(best)


def test_suv_peak_is_the_best_1ml_sphere_mean_centred_in_the_lesion():
    image, _, lesions = _phantom()
    assert peak_sphere(VOXEL).sum() * np.prod(VOXEL) == pytest.approx(1000.0, rel=0.15)  # about 1 mL of voxels
    corner = np.zeros(image.shape, bool)
    corner[:3, 37:, :2] = True  # at the image's border: voxels outside the image do not count
    for lesion in (lesions == 1, lesions == 2, corner):
        assert suv_peak(image, lesion, VOXEL) == pytest.approx(_brute_force_peak(image, lesion), rel=1e-12)


def test_lesion_bias_against_a_reference_by_hand():
    ref, brain, lesions = _phantom(0)
    pred = ref.copy()
    pred[lesions == 1] *= 0.8  # 20 % of lesion 1's uptake lost, lesion 2 untouched
    result = lesion_bias(pred, ref, lesions, brain, VOXEL)
    assert set(result) == {"1", "2"}
    one, two = result["1"], result["2"]
    assert one["suv_mean_bias_pct"] == pytest.approx(-20.0) and one["suv_max_bias_pct"] == pytest.approx(-20.0)
    expected_peak = 100 * (_brute_force_peak(pred, lesions == 1) / _brute_force_peak(ref, lesions == 1) - 1)
    assert one["suv_peak_bias_pct"] == pytest.approx(expected_peak) and -20.0 < expected_peak < 0  # sphere spills over
    assert two["suv_mean_bias_pct"] == 0.0 and two["contrast_recovery"] == pytest.approx(1.0)
    # contrast recovery by hand with the background shell: brain voxels 3-9 mm outside the lesion, no lesion
    lesion = lesions == 1
    dist = np.full(lesion.shape, np.inf)
    inside = np.argwhere(lesion) * np.array(VOXEL)
    for idx in itertools.product(*(range(n) for n in lesion.shape)):
        if brain[idx] and not lesions[idx]:
            dist[idx] = np.sqrt(np.min(np.sum((inside - np.array(idx) * np.array(VOXEL)) ** 2, axis=1)))
    shell = (dist > 3.0) & (dist <= 9.0)
    expected = (pred[lesion].mean() / pred[shell].mean() - 1) / (ref[lesion].mean() / ref[shell].mean() - 1)
    assert one["contrast_recovery"] == pytest.approx(expected, rel=1e-9)
    assert one["reference_contrast"] == pytest.approx(ref[lesion].mean() / ref[shell].mean() - 1, rel=1e-9)
    assert one["reference_contrast"] > 0  # a hot lesion
    assert contrast_recovery(ref, ref, lesion, shell) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.zeros((40, 40, 19)), "another grid"),
        (np.full((40, 40, 20), 0.5), "integers"),
        (np.zeros((40, 40, 20)), "no lesion voxels"),
        (np.full((40, 40, 20), -1.0), "integers"),
    ],
    ids=["other_grid", "fractional", "empty", "negative"],
)
def test_bad_lesion_maps_are_refused_in_one_line(labels, message):
    with pytest.raises(InputDataError, match=message):
        check_lesion_map(labels, (40, 40, 20), "lesion map x.nii.gz")


def test_regions_and_regional_metrics_against_brute_force_and_scikit_image():
    ref, brain, _ = _phantom(1)
    pred = ref + np.random.default_rng(5).normal(0, 2.0, ref.shape)
    tissue = np.where(brain, 1 + (np.arange(ref.shape[0])[:, None, None] % 2), 0) * np.ones(ref.shape, int)
    regions = brain_regions(brain, VOXEL, tissue)
    outside = np.argwhere(~brain) * np.array(VOXEL)
    for idx in np.argwhere(regions["interior"])[::37]:  # sampled: every interior voxel is > 6 mm from the outside
        assert np.sqrt(np.min(np.sum((outside - idx * np.array(VOXEL)) ** 2, axis=1))) > 6.0
    for idx in np.argwhere(regions["edge"])[::37]:
        assert np.sqrt(np.min(np.sum((outside - idx * np.array(VOXEL)) ** 2, axis=1))) <= 6.0
    assert (
        not (regions["interior"] & regions["edge"]).any() and ((regions["interior"] | regions["edge"]) == brain).all()
    )
    metrics = regional_metrics(pred, ref, brain, regions)
    assert set(metrics) == {"interior", "edge", "grey_matter", "white_matter"}
    peak = ref[brain].max()
    for name, values in metrics.items():
        r = regions[name]
        assert values["nrmse"] == pytest.approx(normalized_root_mse(ref[r], pred[r], normalization="euclidean"))
        assert values["psnr"] == pytest.approx(peak_signal_noise_ratio(ref[r], pred[r], data_range=peak))


def test_paper_convention_by_hand_and_against_monai_ssim():
    ref, brain, _ = _phantom(2)
    pred = ref + np.random.default_rng(3).normal(0, 1.5, ref.shape)
    result = paper_convention_metrics(pred, ref, brain)
    x, y = pred * brain, ref * brain
    slices = [z for z in range(ref.shape[-1]) if brain[..., z].any()]
    nrmse = np.mean([np.linalg.norm(x[..., z] - y[..., z]) / np.linalg.norm(y[..., z]) for z in slices])
    psnr = np.mean([10 * np.log10(y[..., z].max() ** 2 / np.mean((x[..., z] - y[..., z]) ** 2)) for z in slices])
    ssim = np.mean([ssim_map_2d(x[..., z : z + 1], y[..., z : z + 1], y[..., z].max()).mean() for z in slices])
    assert result["nrmse"] == pytest.approx(nrmse) and result["psnr"] == pytest.approx(psnr)
    assert result["ssim"] == pytest.approx(ssim, abs=1e-4)  # scikit-image vs MONAI's implementation


def test_paired_comparison_against_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 1.0, 9)
    b = a - rng.normal(0.5, 0.4, 9)
    result = paired_comparison(a, b)
    d = a - b
    assert result.mean_difference == pytest.approx(d.mean())
    wins = int((d > 0).sum())
    n = int((d != 0).sum())
    by_hand = min(1.0, 2 * sum(math.comb(n, k) for k in range(min(wins, n - wins) + 1)) / 2**n)
    assert result.sign_test_p == pytest.approx(by_hand) and result.wins == wins
    reference = stats.bootstrap((d,), np.mean, n_resamples=10_000, method="percentile", random_state=1)
    ci = reference.confidence_interval
    assert result.ci_low == pytest.approx(ci.low, abs=0.05) and result.ci_high == pytest.approx(ci.high, abs=0.05)
    assert result.ci_low < result.mean_difference < result.ci_high
    assert paired_comparison(a, b) == result  # seeded
    assert "better on" in result.sentence("A", "B", "PSNR", " dB")
    low, high = f"{result.ci_low:+.2f}", f"{result.ci_high:+.2f}"
    assert result.interval(" dB") == f"{d.mean():+.2f} dB ({low} to {high})" and result.interval().startswith("+")


def test_evaluate_predictions_json_gives_one_object_with_every_metric(tmp_path):
    ref, brain, lesions = _phantom(4)
    pred = ref * np.where(lesions == 2, 0.9, 1.0)
    affine = np.diag([*VOXEL, 1.0])
    files = {}
    for name, data in (("pred", pred), ("ref", ref), ("mask", brain), ("lesion", lesions), ("truth", ref)):
        files[name] = tmp_path / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(data, np.float32), affine), files[name])
    cmd = [
        sys.executable,
        str(REPO_ROOT / "scripts" / "evaluate_predictions.py"),
        "--pred",
        str(files["pred"]),
        "--ref",
        str(files["ref"]),
        "--mask",
        str(files["mask"]),
        "--lesion-mask",
        str(files["lesion"]),
        "--truth",
        str(files["truth"]),
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)  # exactly one JSON object on stdout
    assert {"nrmse", "psnr", "ssim", "regions", "lesions", "paper_convention"} <= set(result)
    assert set(result["lesions"]) == {"1", "2"} and {"interior", "edge"} <= set(result["regions"])
    two = result["lesions"]["2"]
    assert two["suv_mean_bias_pct"] == pytest.approx(-10.0, abs=1e-3) and two["suv_max_bias_pct"] == pytest.approx(
        -10.0, abs=1e-3
    )
    assert two["suv_peak_bias_pct"] < 0 and 0 < two["contrast_recovery"] < 1 and "suv_mean_bias_pct_vs_truth" in two
    assert result["lesions"]["1"]["suv_mean_bias_pct"] == pytest.approx(0.0, abs=1e-4)
    bad = tmp_path / "bad_lesion.nii.gz"
    nib.save(nib.Nifti1Image(np.full(ref.shape, 0.5, np.float32), affine), bad)
    proc = subprocess.run([*cmd[:-5], "--lesion-mask", str(bad), "--json"], capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "bad_lesion.nii.gz" in lines[0] and proc.stdout == ""
