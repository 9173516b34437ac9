"""The best gain of a study's sub-2 mm detail and its image reading, on volumes whose answer is known."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from helpers import load_script

from bundle.generalist.detail_band import band_gains, fit_reading_line, grid_band


def test_the_best_gain_is_one_without_extra_noise_and_about_half_when_noise_doubles_the_band():
    rng = np.random.default_rng(0)
    shape = (24, 24, 12)
    low = np.full(shape, 10.0)
    brain = np.ones(shape, dtype=bool)
    band_full = rng.normal(0, 1, shape)
    assert band_gains(low, band_full, band_full, brain)["oracle"] == pytest.approx(1.0)
    noisy = band_full + rng.normal(0, 1, shape)  # as much noise again as the full dose's band
    assert band_gains(low, noisy, band_full, brain)["oracle"] == pytest.approx(0.5, abs=0.03)
    # a band of pure, stationary noise reads as noise everywhere (w_flat about 0) ...
    assert band_gains(low, rng.normal(0, 1, shape), band_full, brain)["flat"] == pytest.approx(0.0, abs=0.1)
    # ... and one that lives at the image's edges only (none in its flat regions) as signal (w_flat 1)
    edges = np.zeros(shape)
    edges[:, 12:, :] = 20.0
    edged_band = np.zeros(shape)
    edged_band[:, 11:13, :] = 1.0
    assert band_gains(edges + 10.0, edged_band, edged_band, brain)["flat"] == pytest.approx(1.0)


def test_the_reading_line_is_a_least_squares_line_and_needs_three_studies():
    records = [{"flat": f, "oracle": 2.0 * f - 0.1} for f in (0.1, 0.3, 0.5)]
    assert fit_reading_line(records) == {"intercept": pytest.approx(-0.1), "slope": pytest.approx(2.0)}
    with pytest.raises(ValueError, match="3 studies"):
        fit_reading_line(records[:2])


def test_a_smooth_study_survives_the_round_trip_and_the_script_reports_every_set(tiny_dataset, tmp_path):
    path = tmp_path / "smooth.nii.gz"
    x, y, z = np.meshgrid(np.arange(30), np.arange(30), np.arange(12), indexing="ij")
    nib.save(nib.Nifti1Image((100 + x + 0.5 * y + 2 * z).astype(np.float32), np.diag([2.5, 2.5, 3.0, 1])), path)
    native, band = grid_band(str(path))
    assert native.shape == band.shape == (30, 30, 12)
    interior = (slice(3, -3), slice(3, -3), slice(2, -2))
    assert np.abs(band[interior]).max() < 1e-3 * native.mean()  # a linear ramp is kept by bilinear resampling
    datalist = str(tiny_dataset / "datalist.json")
    script = load_script("detail_band_gains")
    out = tmp_path / "report"
    args = ["--test-set", f"tiny={datalist}", "--fit-set", "tiny", "--drf", "20", "200", "--out", str(out)]
    assert script.main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["records"]) == 4 * 2 and results["detail_drf"] > 0
    assert all(0.0 <= r["oracle"] <= 1.0 and 0.0 <= r["calibrated"] <= 1.0 for r in results["records"])
    assert "| tiny (fitted on) | 8 |" in (out / "README.md").read_text()
    with pytest.raises(SystemExit):
        script.main(args[:-2] + ["--fit-set", "nothing", "--out", str(out)])


def test_the_local_rule_is_chosen_within_the_psnr_allowance_by_its_lesions_suvmax():
    from bundle.generalist.detail_local import READ_GAIN, choose_rule, summary_rows

    def row(subject, drf, rule, psnr, suv_max):
        return {"subject": subject, "drf": drf, "rule": rule, "psnr": psnr, "hot_suv_mean_bias_pct": [-1.0],
                "hot_suv_max_bias_pct": [suv_max]}  # fmt: skip

    rows = []
    for subject in ("a", "b"):
        for drf in (20.0, 200.0):
            rows += [row(subject, drf, READ_GAIN, 30.0, -10.0), row(subject, drf, "within", 29.97, -6.0)]
            rows += [row(subject, drf, "best lesions", 29.9 if drf == 20.0 else 30.1, -1.0)]  # 0.1 dB down at 20
    assert choose_rule(rows) == "within"
    assert choose_rule(rows, allowance_db=0.2) == "best lesions"
    assert choose_rule([r for r in rows if r["rule"] != "within"]) == READ_GAIN  # none within 0.05 dB
    at20, at200 = summary_rows(rows, "t", "within")
    assert at20["PSNR: local - read gain, dB"].startswith("-0.03")
    assert at200["hot SUVmax bias %: read gain / local"] == "-10.0 / -6.0"


def test_on_the_network_grid_every_band_rule_gives_the_read_gains_output(tiny_dataset, tiny_trained, tmp_path):
    """The script end to end on the tiny network: a study on the network's grid has an empty band, so every local
    rule's output (and PSNR) is the read gain's; the chosen rule and every row are written."""
    script = load_script("detail_local_gain")
    datalist = str(tiny_dataset / "datalist.json")
    args = ["--fit-set", f"fit={datalist}", "--test-set", f"test={datalist}", "--drf", "200", "--subjects", "2"]
    assert script.main([*args, "--weights", str(tiny_trained / "checkpoints"), "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["rows"]["test"]
    assert len({r["rule"] for r in rows}) == 13 and {r["subject"] for r in rows} == {"sub-001", "sub-002"}
    for subject in ("sub-001", "sub-002"):
        psnrs = {round(r["psnr"], 6) for r in rows if r["subject"] == subject}
        assert len(psnrs) == 1, psnrs
    assert (
        results["chosen"] in {r["rule"] for r in rows} and "chosen on **fit**" in (tmp_path / "README.md").read_text()
    )


def test_the_local_gain_is_the_same_with_the_study_uptake_computed_once():
    """The selection computes a study's smoothed uptake and flat mask once for every rule: the gain is the same."""
    from bundle.transforms.native_grid import local_band_gain, uptake_and_flat

    rng = np.random.default_rng(0)
    image = 1.0 + rng.random((24, 24, 24))
    band = rng.normal(0, 0.1, image.shape)
    brain = np.zeros(image.shape, bool)
    brain[4:20, 4:20, 4:20] = True
    once = uptake_and_flat(image, brain)
    for sigma, factor in ((1.0, 3.0), (2.0, 1.5)):
        np.testing.assert_array_equal(
            local_band_gain(image, band, brain, sigma, factor, once), local_band_gain(image, band, brain, sigma, factor)
        )
