"""The noise level measured from a pair, the estimator that reads it from one image, and the dose code it gives."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from helpers import load_script
from skimage.metrics import mean_squared_error

from bundle.deploy.dose_input import DoseInput, shipped_noise_estimator
from bundle.errors import ConfigValueError, InputDataError
from bundle.io import file_sha256, load_ras_volume
from bundle.metrics.relative_noise import noise_mask, relative_noise, relative_noise_log2
from bundle.networks.noise_estimator import NoiseLevelNet
from bundle.noise_estimation import NoiseEstimator, NoisePair, NoiseSliceSamples, equivalent_drf, volume_noise_log2
from bundle.noise_estimation.evaluation import estimator_comparison_rows, estimator_rows
from bundle.noise_estimation.training import fit_code_calibration, fit_dose_calibration, train_noise_estimator


def _phantom(shape=(40, 40, 12), seed=0) -> np.ndarray:
    """A smooth blob (a 'brain') with a warmer core on a zero background."""
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = x**2 + y**2 + (z / 1.5) ** 2
    return np.where(r < 0.6, 1.0 + 1.5 * np.exp(-r / 0.1), 0.0).astype(np.float32)


def test_relative_noise_matches_an_independent_mean_squared_error():
    full = _phantom()
    rng = np.random.default_rng(1)
    low = full * 1.3 + 0.05 * rng.standard_normal(full.shape).astype(np.float32) * (full > 0)  # other units
    mask = noise_mask(low)
    expected = np.sqrt(mean_squared_error(low[mask] / low[mask].mean(), full[mask] / full[mask].mean()))
    assert relative_noise(low, full, mask) == pytest.approx(expected, rel=1e-6)
    assert relative_noise_log2(low, full) == pytest.approx(np.log2(relative_noise(low, full)))
    assert relative_noise(full, full) == 0.0


def test_the_untrained_estimator_reads_a_doubled_noise_four_times_the_variance():
    """With its correction at zero its map is the in-plane high-pass energy: twice the noise, +2 in log2 variance."""
    noise = torch.from_numpy(np.random.default_rng(2).standard_normal((1, 3, 64, 64)).astype(np.float32))
    network = NoiseLevelNet(features=4)
    region = torch.ones(1, 1, 64, 64)
    with torch.no_grad():
        maps = [
            network.noise_map(torch.cat([1.0 + s * noise, region], dim=1))[0, 0, 16:-16, 16:-16] for s in (0.02, 0.04)
        ]
    assert float((maps[1] - maps[0]).median()) == pytest.approx(2.0, abs=0.05)


def _pairs(levels=(0.01, 0.04, 0.16), seed=0) -> list[NoisePair]:
    full = _phantom()
    rng = np.random.default_rng(seed)
    pairs = []
    for drf, sigma in zip((2.0, 20.0, 200.0), levels):
        low = full + sigma * rng.standard_normal(full.shape).astype(np.float32) * (full > 0)
        pairs.append(NoisePair.from_volumes("s", drf, low, full))
    return pairs


def test_samples_carry_the_noise_they_show_and_training_is_seeded():
    pairs = _pairs()
    samples = NoiseSliceSamples(pairs, 16, seed=4, crop=24, filter_probability=0.0, noise_scale=(1.0, 1.0))
    item = samples[3]
    assert item["image"].shape == (4, 24, 24) and item["label"].shape == (1,)
    assert torch.equal(samples[3]["image"], item["image"])  # a pure function of (seed, epoch, index)
    labels = [float(samples[i]["label"]) for i in range(16)]
    assert max(labels) - min(labels) > 2.5  # 16x noise apart: 4 in log2
    first, losses = train_noise_estimator(pairs, epochs=2, samples_per_epoch=8, batch_size=4, features=4, seed=5)
    second, _ = train_noise_estimator(pairs, epochs=2, samples_per_epoch=8, batch_size=4, features=4, seed=5)
    assert len(losses) == 2
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


def test_calibration_inverts_to_the_drf_of_a_noise_level():
    pairs = _pairs()
    calibration = fit_dose_calibration(pairs)
    assert calibration["slope"] == pytest.approx(np.log2(4) / np.log2(10), abs=0.02)  # 4x noise per 10x DRF
    for pair in pairs:
        level = relative_noise_log2(pair.low, pair.full, pair.mask)
        assert equivalent_drf(level, calibration) == pytest.approx(pair.drf, rel=0.05)
    network = NoiseLevelNet(features=4)  # untrained: its readings compress the range, the code calibration undoes it
    code = fit_code_calibration(network, pairs)
    assert 0 < code["slope"] < calibration["slope"]
    readings = [volume_noise_log2(network, pair.low) for pair in pairs]

    def rms_error(fit):
        return np.sqrt(np.mean([np.log2(equivalent_drf(v, fit) / p.drf) ** 2 for v, p in zip(readings, pairs)]))

    assert rms_error(code) < 0.5 * rms_error(calibration)


class _FakeEstimator:
    """Reads every image as DRF 40 at a noise of 2^-3, with a safety margin of one half (log2)."""

    record = {"safety_margin_log2": 0.5}

    def drf(self, image):
        return 40.0, -3.0

    code_drf = NoiseEstimator.code_drf  # the shipped margin and floor, on this fake reading


def test_with_an_estimator_no_drf_is_needed_and_the_code_is_lowered_by_the_margin(caplog):
    dose = DoseInput(None, _FakeEstimator(), (2.0, 200.0))
    dose.check()
    with caplog.at_level(logging.INFO, logger="bundle.deploy.dose_input"):
        code = dose("study", torch.ones(1, 4, 4, 4))
    assert dose.used["study"] == {
        "drf": pytest.approx(40 / 2**0.5, rel=1e-3),
        "source": "image",
        "relative_noise": 0.125,
    }
    assert "(read from the image)" in caplog.text and code.shape == (1, 4, 4, 4)
    assert DoseInput(20, _FakeEstimator())("s", torch.ones(1, 2, 2, 2)) is not None
    with pytest.raises(ConfigValueError, match="'auto' needs a noise estimator calibrated for these weights"):
        DoseInput("auto", None)


def test_an_estimator_calibrated_on_another_cohort_is_not_used(tmp_path):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"w")
    provenance = tmp_path / "model_provenance.json"
    provenance.write_text(
        json.dumps({"sha256": file_sha256(weights), "dose_conditioning": True, "training_datalist": "a/datalist.json"})
    )
    record = tmp_path / "noise_estimator.json"
    record.write_text(json.dumps({"calibration": {"cohort": "b/datalist.json"}}))
    assert shipped_noise_estimator(record, provenance, weights) is None
    assert shipped_noise_estimator(tmp_path / "missing.json", provenance, weights) is None


def test_estimator_rows_report_errors_in_both_units():
    records = [
        {"test_set": "a", "subject": "s1", "drf": 20.0, "measured_log2": -4.0, "estimated_log2": -3.5,
         "equivalent_drf_measured": 20.0, "equivalent_drf_estimated": 40.0, "legacy_drf": 80.0},
        {"test_set": "a", "subject": "s2", "drf": 20.0, "measured_log2": -4.0, "estimated_log2": -4.5,
         "equivalent_drf_measured": 20.0, "equivalent_drf_estimated": 10.0, "legacy_drf": None},
    ]  # fmt: skip
    (row,) = estimator_rows(records)
    assert row["noise level: RMS error, log2"] == "0.50" and row["noise level: mean error, log2"] == "+0.00"
    assert row["equivalent DRF: RMS error vs measured noise's, log2"] == "1.00"
    assert row["bundle 0.2 estimate vs DRF label: RMS, log2"] == "2.00"
    assert row["estimated equivalent DRF vs DRF label: RMS, log2"] == "1.00"


# -- the lesion noise floor (issue 31) ----------------------------------------------------------------------------


def test_lesion_noise_floor_is_the_sd_of_each_lesions_bias_over_repeats():
    import statistics

    from bundle.generalist.noise_floor_report import noise_floor_rows_summary
    from bundle.quantification.noise_floor import lesion_noise_floor

    full = np.ones((10, 10, 4), dtype=np.float32)
    lesions = np.zeros_like(full, dtype=int)
    lesions[2:4, 2:4, 1] = 1
    lesions[6:9, 6:9, 2] = 2
    rng = np.random.default_rng(0)
    repeats = [full * (1 + 0.05 * rng.standard_normal(full.shape)).astype(np.float32) for _ in range(5)]
    rows = lesion_noise_floor(repeats, full, lesions, {"1": "hot_nodule"}, (2.0, 2.0, 2.0))
    assert [r["kind"] for r in rows] == ["hot_nodule", "lesion"] and rows[0]["voxels"] == 4
    biases = [100.0 * (float(r[lesions == 1].mean()) - 1.0) for r in repeats]
    assert rows[0]["suv_mean_sd_pct"] == pytest.approx(statistics.stdev(biases), rel=1e-5)
    assert rows[0]["suv_mean_bias_pct"] == pytest.approx(statistics.mean(biases), abs=1e-4)
    summary_input = [
        {"test_set": "t", "drf": 200.0, "polarity": "hot", "small": True, "suv_mean_sd_pct": 2.0,
         "input_suv_mean_bias_pct": 0.0, "model_suv_mean_bias_pct": bias, "model_bias_in_floor_sd": bias / 2.0}
        for bias in (-3.0, -5.0)
    ]  # fmt: skip
    hot, small = noise_floor_rows_summary(summary_input)
    assert small["model mean bias within 2 floor SDs"] == "yes" and small["lesions with |bias| <= 2 own SDs"] == "1/2"
    summary_input[1]["model_suv_mean_bias_pct"] = -6.0
    assert noise_floor_rows_summary(summary_input)[1]["model mean bias within 2 floor SDs"] == "**no**"


def test_the_model_on_every_thinning_reads_its_own_spread_and_mean_error():
    """`--model-on-repeats`: each thinning is written as the dataset writes its images and given to the denoiser (an
    identity here returns it in RAS, as `_ras` does); the model's SUVmax SD and mean |bias| are over the thinnings."""
    import statistics

    from bundle.generalist.noise_floor_report import (
        _denoised_thinnings,
        _model_over_repeats,
        _ras,
        model_repeats_summary,
    )
    from bundle.simulation.subject_volumes import drf_tag

    rng = np.random.default_rng(1)
    affine = np.diag([-2.0, 2.0, 2.5, 1.0])  # not RAS on disk: the denoiser's output is
    volumes = {f"pet_{drf_tag(200.0)}_rep{k}": rng.random((6, 5, 4)).astype(np.float32) for k in range(3)}
    outputs = _denoised_thinnings(volumes, affine, 200.0, 3, lambda path, drf: load_ras_volume(path), [".nii", ".gz"])
    for k, out in enumerate(outputs):
        np.testing.assert_array_equal(out, _ras(volumes[f"pet_{drf_tag(200.0)}_rep{k}"], affine))
    full = np.ones((6, 5, 4), dtype=np.float32)
    mask = np.zeros(full.shape, dtype=bool)
    mask[1:3, 1:3, 1:3] = True
    images = [full * f for f in (0.9, 1.0, 1.3)]
    stats = _model_over_repeats(images, mask, {"suv_mean": 1.0, "suv_max": 1.0}, (2.0, 2.0, 2.0))
    assert stats["model_repeats_suv_max_bias_pct"] == pytest.approx((-10 + 0 + 30) / 3, abs=1e-4)
    assert stats["model_repeats_abs_suv_max_bias_pct"] == pytest.approx((10 + 0 + 30) / 3, abs=1e-4)
    assert stats["model_repeats_suv_mean_sd_pct"] == pytest.approx(statistics.stdev([-10, 0, 30]), abs=1e-3)
    row = {"test_set": "t", "drf": 200.0, "polarity": "hot", "small": False, "suv_max_sd_pct": 11.0, **stats}
    (summary,) = model_repeats_summary([row, dict(row, polarity="cold")])
    assert summary["n"] == 1 and summary["model mean abs SUVmax bias %"] == "13.3"


def test_repeated_thinnings_leave_the_datasets_images_unchanged():
    from bundle.simulation import SimulationConfig
    from bundle.simulation.subject_volumes import build_projector, simulate_subject_volumes

    config = SimulationConfig(preset="tiny", slices=6, n_subjects=1, seed=5, drfs=(20.0,), device="cpu")
    projector = build_projector(config, torch.device("cpu"))
    plain, _, _ = simulate_subject_volumes(0, config, projector)
    repeated, _, _ = simulate_subject_volumes(0, config, projector, {20.0: 2})
    only, _, _ = simulate_subject_volumes(0, config, projector, {20.0: 1}, dose_levels=False)
    assert np.array_equal(plain["pet_drf20"], repeated["pet_drf20"]) and "pet_drf20" not in only
    first, second = repeated["pet_drf20_rep0"], repeated["pet_drf20_rep1"]
    assert not np.array_equal(first, second) and np.array_equal(first, only["pet_drf20_rep0"])
    brain = plain["brain_mask"] > 0
    assert first[brain].mean() == pytest.approx(plain["pet_drf20"][brain].mean(), rel=0.05)


def test_estimator_records_put_studies_on_the_network_grid_as_inference_does(tiny_dataset, tmp_path):
    from monai.transforms import Compose, LoadImage, Orientation, Spacing

    from bundle.data import at_dose, load_datalist
    from bundle.noise_estimation.evaluation import estimator_records, on_network_grid

    torch.manual_seed(0)
    weights = tmp_path / "estimator.pt"
    torch.save(NoiseLevelNet(3, 8).state_dict(), weights)
    line = {"intercept": -7.0, "slope": 0.5, "cohort": "x"}
    record = {"weights": weights.name, "sha256": file_sha256(weights), "in_slices": 3, "features": 8}
    (tmp_path / "estimator.json").write_text(json.dumps({**record, "calibration": line, "code_calibration": line}))
    estimator = NoiseEstimator.load(tmp_path / "estimator.json")
    records = estimator_records({"tiny": str(tiny_dataset / "datalist.json")}, [20.0], estimator)
    items = load_datalist(tiny_dataset / "datalist.json")
    assert len(records) == len(items)
    # an independent path: MONAI's loader, RAS and 2 mm resampling, without the inference config's scaling
    plain = Compose([LoadImage(image_only=True, ensure_channel_first=True), Orientation("RAS"), Spacing((2.0,) * 3)])
    low, full = (np.asarray(plain(p))[0] for p in (at_dose(items[:1], 20.0)[0]["image"], items[0]["label"]))
    assert on_network_grid(items[0]["label"]).shape == full.shape  # 4 mm tiny voxels resampled to 2 mm
    assert full.shape[0] == 2 * load_ras_volume(items[0]["label"]).shape[0] - 1
    assert records[0]["measured_log2"] == pytest.approx(relative_noise_log2(low, full), abs=1e-6)
    assert records[0]["estimated_log2"] == pytest.approx(estimator.noise_log2(low), abs=1e-4)
    assert records[0]["equivalent_drf_estimated"] == pytest.approx(equivalent_drf(records[0]["estimated_log2"], line))


def _reading_records(errors: dict[tuple[str, str], float]) -> list[dict]:
    """Estimator records whose estimate is off the measured noise by `errors[(test set, subject)]` at two DRFs."""
    return [
        {"test_set": name, "subject": subject, "drf": drf, "measured_log2": -5.0, "estimated_log2": -5.0 + error}
        for (name, subject), error in errors.items()
        for drf in (2.0, 200.0)
    ]


def test_two_estimators_are_compared_per_test_set_with_a_paired_interval_over_subjects(tmp_path, capsys):
    close = {("paper", f"s{k}"): 0.2 + 0.01 * k for k in range(6)} | {("second", f"s{k}"): 0.5 for k in range(3)}
    far = {key: 2 * error for key, error in close.items()}
    rows = estimator_comparison_rows(_reading_records(close), _reading_records(far), ("close", "far"))
    assert [r["test set"] for r in rows] == ["paper", "second", "all"] and rows[-1]["studies"] == 18
    paper = rows[0]
    expected = np.sqrt(np.mean(np.square([0.2 + 0.01 * k for k in range(6)])))
    assert paper["RMS error, log2 noise: close"] == f"{expected:.2f}"
    assert paper["RMS error, log2 noise: far"] == f"{2 * expected:.2f}"
    difference = paper["squared error: close - far (subjects)"]
    mean = -3 * np.mean(np.square([0.2 + 0.01 * k for k in range(6)]))  # e^2 - (2e)^2, subject by subject
    assert difference.startswith(f"{mean:+.2f} (") and difference.endswith("(6)")  # below 0: `close` reads closer
    with pytest.raises(InputDataError, match="hold other studies"):
        estimator_comparison_rows(_reading_records(close), _reading_records({("paper", "s0"): 0.1}), ("a", "b"))
    for name, errors in (("close", close), ("far", far)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"records": _reading_records(errors)}))
    script = load_script("compare_noise_estimators")
    assert script.main([f"close={tmp_path / 'close.json'}", f"far={tmp_path / 'far.json'}"]) == 0
    assert "| paper | 12 |" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        script.main([f"a={tmp_path / 'close.json'}", f"a={tmp_path / 'far.json'}"])
    assert info.value.code == 2 and "setting reports" in capsys.readouterr().err
