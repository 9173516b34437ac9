"""A study comes back on its own grid as its untouched input plus the network's resampled correction, through the
shipped inference components (`configs/inference.json`), and evaluation runs that same path."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import REPO_ROOT

from bundle.deploy.study_denoiser import StudyDenoiser, inference_components
from bundle.errors import ConfigValueError
from bundle.generalist import TrainedDenoiser
from bundle.io import load_ras_volume
from bundle.simulation import SimulationConfig


class CentreSlice(torch.nn.Module):
    """A network that returns the centre of its 3 stacked slices (channel 1): a zero correction."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 1:2] * 1.0


def _off_grid_study(tiny_dataset, tmp_path, voxel=(2.3, 2.3, 2.78)):
    """The tiny dataset's sub-001 low-dose image written with other voxel sizes (a study off the 2 mm grid)."""
    source = nib.load(tiny_dataset / "sub-001" / "sub-001_pet_drf200.nii.gz")
    data = np.asarray(source.get_fdata(dtype=np.float32))
    affine = np.diag([*voxel, 1.0])
    path = tmp_path / "offgrid.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path, data


def _components(native_grid_correction: bool, **overrides):
    preprocessing, shipped = inference_components(
        {"native_grid_correction": native_grid_correction, "device": "cpu", "precision": "fp32", **overrides}
    )
    return preprocessing, StudyDenoiser(shipped.inferer, shipped.postprocessing, CentreSlice())


def test_a_zero_correction_returns_an_off_grid_study_exactly(tiny_dataset, tmp_path):
    """With its sub-grid detail kept whole (no DRF under the DRF rule), a zero correction returns the study as it
    came; the default reads the detail's gain from the study instead (the next tests)."""
    path, data = _off_grid_study(tiny_dataset, tmp_path)
    preprocessing, denoiser = _components(True, detail_reading=None)
    item = preprocessing({"image": str(path)})
    assert tuple(item["image"].shape[1:]) != data.shape  # the network ran on the 2 mm grid
    out = denoiser("offgrid", item)
    assert tuple(out.shape) == (1, *data.shape)
    assert np.array_equal(out[0].numpy(), data)  # bit for bit: nothing of the round trip reaches the output
    np.testing.assert_allclose(np.asarray(out.affine), np.diag([2.3, 2.3, 2.78, 1.0]), atol=1e-6)
    # the resampled prediction (before 0.2.1) loses detail in the round trip, which the correction path avoids
    preprocessing, resampled = _components(False)
    old = resampled("offgrid", preprocessing({"image": str(path)}))[0].numpy()
    assert old.shape == data.shape and np.abs(old - data).max() > 0.05 * data.max()


def test_on_the_training_grid_the_correction_path_returns_the_prediction(tiny_dataset, tiny_trained):
    checkpoint = tiny_trained / "checkpoints" / "model.pt"
    overrides = {"ckpt_path": str(checkpoint), "network_def#base_features": 4, "training_spacing": [4.0, 4.0, 4.0]}
    overrides.update({"device": "cpu", "precision": "fp32"})
    study = str(tiny_dataset / "sub-001" / "sub-001_pet_drf200.nii.gz")
    outputs = {}
    for native in (True, False):
        preprocessing, denoiser = inference_components(dict(overrides, native_grid_correction=native))
        outputs[native] = denoiser("sub-001", preprocessing({"image": study}))[0].numpy()
    np.testing.assert_allclose(outputs[True], outputs[False], rtol=0, atol=1e-5 * float(outputs[False].max()))
    assert not np.array_equal(outputs[True], load_ras_volume(study))  # the network did change the image


def test_evaluation_runs_the_shipped_inference_path(tiny_dataset, tiny_trained, tmp_path):
    """`TrainedDenoiser` (the generalist evaluation) gives what batch inference writes for the same off-grid study."""
    from helpers import run_bundle_in_process, tiny_inference_settings

    (tmp_path / "in").mkdir()
    path, _ = _off_grid_study(tiny_dataset, tmp_path / "in")
    run = tiny_trained / "checkpoints"
    evaluated = TrainedDenoiser(run, weights="model.pt", precision="fp32")(path, None)
    settings = tiny_inference_settings(run / "model.pt", precision="fp32", dataset_dir=str(tmp_path / "in"))
    settings.update({"output_dir": str(tmp_path / "out"), "write_dicom": False})
    proc = run_bundle_in_process([str(REPO_ROOT / "configs" / "inference.json")], settings)
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = load_ras_volume(tmp_path / "out" / "offgrid_denoised.nii.gz")
    assert written.shape == evaluated.shape == load_ras_volume(path).shape
    np.testing.assert_allclose(written, evaluated, rtol=0, atol=1e-5 * float(written.max()))
    # the gain read from the study (the default) is in its record and, below 1, in the run's summary
    weight = json.loads((tmp_path / "out" / "offgrid_denoised.json").read_text())["made_by"]["detail_weight"]
    assert 0.0 <= weight < 1.0 and f"study-wide sub-grid detail gain {weight:.2f}" in proc.stdout


def test_the_read_gain_is_one_for_an_empty_band_and_falls_with_the_noise_in_it():
    """`flat_band_reading`: a study on the network's grid (a band of float rounding) keeps its detail (w = 1 after
    any line through (1, 1)); noise added to the band lowers the reading, structure keeps it high."""
    from bundle.transforms.native_grid import flat_band_reading

    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:40, :40, :40]
    image = 1.0 + np.exp(-((x - 20.0) ** 2 + (y - 20.0) ** 2 + (z - 20.0) ** 2) / 60.0) + 0.5 * (x > 20)
    brain = np.ones(image.shape, dtype=bool)
    assert flat_band_reading(image, 1e-9 * rng.standard_normal(image.shape), brain) == 1.0
    noise = 0.05 * rng.standard_normal(image.shape)
    structure = image - (np.roll(image, 1, 0) + np.roll(image, -1, 0)) / 2  # detail where the image changes
    assert flat_band_reading(image, noise, brain) < 0.1 < 0.5 < flat_band_reading(image, structure, brain)


def test_native_storage_grid_needs_a_randomised_scanner():
    with pytest.raises(ConfigValueError, match="setting grid"):
        SimulationConfig(preset="tiny", grid="native")
    with pytest.raises(ConfigValueError, match="setting grid"):
        SimulationConfig(preset="tiny", scanner="randomised", grid="somewhere")
    assert "grid" not in SimulationConfig(preset="tiny").data_settings()  # the default keeps every settings hash


def test_a_training_runs_detail_gain_is_fitted_recorded_for_its_weights_and_read_by_evaluation(
    tiny_dataset, tiny_trained, tmp_path, monkeypatch
):
    """A run evaluated off the 2 mm grid gets its own detail gain, as the shipped weights have theirs; the record is
    tied to its weights' sha256. A dose-blind run, given no DRF, keeps all its detail and gets none."""
    import shutil

    from helpers import load_script

    from bundle.deploy.export import record_run_entry, run_provenance_file
    from bundle.errors import InputDataError

    run = tmp_path / "checkpoints"
    shutil.copytree(tiny_trained / "checkpoints", run)
    assert TrainedDenoiser(run).detail_drf is None  # nothing fitted: no DRF rule (the default reads the gain)
    evaluate = load_script("evaluate_generalist")
    evaluate._fit_missing_detail_gains({"tiny": str(run)}, str(tmp_path / "none.json"), (20.0, 200.0))
    assert not run_provenance_file(run).is_file()  # dose-blind: skipped, no tuning cohort read
    monkeypatch.setattr(evaluate, "_is_dose_blind", lambda path: False)  # the fit's plumbing, as for a coded run
    evaluate._fit_missing_detail_gains({"tiny": str(run)}, str(tiny_dataset / "datalist.json"), (20.0, 200.0))
    fit = json.loads(run_provenance_file(run).read_text())["detail_gain"]
    assert set(fit["per_drf"]) == {"20", "200"} and fit["subjects"] == ["sub-001", "sub-002", "sub-003", "sub-004"]
    assert TrainedDenoiser(run).detail_drf == pytest.approx(fit["detail_drf"])
    assert TrainedDenoiser(run, overrides={"detail_drf": None}).detail_drf is None
    with pytest.raises(InputDataError, match="generalist-train-native"):  # a missing tuning cohort, named
        evaluate._fit_missing_detail_gains({"other": str(tiny_trained / "checkpoints")}, str(tmp_path / "none.json"))
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
    torch.save({"trained further": True, **state}, run / "best.pt")  # other weights: the fit no longer describes them
    assert TrainedDenoiser(run).detail_drf is None
    with pytest.raises(InputDataError, match="other weights"):
        record_run_entry(run, "detail_gain", fit)


def test_a_gain_read_from_the_study_needs_no_drf_and_spans_the_input_and_the_resampled_prediction(
    tiny_dataset, tmp_path
):
    """With `detail_reading`, w comes from the study's own band: a line pinned at 1 returns the input exactly, one
    pinned at 0 the resampled prediction, and the fitted line something in between, recorded as `detail_weight`."""
    path, data = _off_grid_study(tiny_dataset, tmp_path)

    def run(reading):
        preprocessing, shipped = inference_components(
            {
                "native_grid_correction": True,
                "device": "cpu",
                "precision": "fp32",
                "detail_reading": reading,
                "detail_local_gain": None,  # one gain for the whole study (bundle 0.3.1)
            }
        )
        item = preprocessing({"image": str(path)})
        item["pred"] = item["image"][:1].clone()  # a zero correction, as CentreSlice gives
        item["dose_used"] = None  # no DRF
        out = shipped.postprocessing(item)
        return out["pred"][0].numpy(), out["detail_weight"]

    kept, w_kept = run({"intercept": 1.0, "slope": 0.0})
    assert w_kept == 1.0 and np.array_equal(kept, data)
    resampled, w_resampled = run({"intercept": 0.0, "slope": 0.0})
    assert w_resampled == 0.0 and np.abs(resampled - data).max() > 0.05 * data.max()
    fitted, w_fitted = run("@detail_reading_line")
    assert 0.0 <= w_fitted <= 1.0
    np.testing.assert_allclose(fitted, w_fitted * kept + (1 - w_fitted) * resampled, rtol=0, atol=1e-4 * data.max())
    with pytest.raises(Exception, match="detail_reading"):
        run({"slope": 1.0})


def test_the_configured_reading_line_is_the_one_the_documented_command_fitted():
    config = json.loads((REPO_ROOT / "configs" / "inference.json").read_text())["detail_reading_line"]
    fitted = json.loads((REPO_ROOT / "docs" / "generalist" / "detail_band" / "results.json").read_text())
    assert config["intercept"] == pytest.approx(fitted["reading_line"]["intercept"], abs=5e-4)
    assert config["slope"] == pytest.approx(fitted["reading_line"]["slope"], abs=5e-4)


def test_a_rerun_with_the_read_gain_redoes_studies_made_with_the_drf_rule_and_earlier_records_still_match():
    from bundle.deploy.study_identity import identity_differences, run_identity

    rule = run_identity("torch", {"torch": "models/model.pt"}, drf=20.0)
    line = {"intercept": -0.132, "slope": 1.947, "_comment": "fitted"}
    read = run_identity("torch", {"torch": "models/model.pt"}, drf=20.0, detail_reading=line)
    assert read["detail_reading"] == {"intercept": -0.132, "slope": 1.947}
    assert [d.split(" ")[0].strip(":") for d in identity_differences(rule, read)] == ["detail_reading"]
    earlier = {k: v for k, v in rule.items() if k != "detail_reading"}  # a record written before the setting existed
    assert identity_differences(earlier, rule) == []


def test_the_local_gain_keeps_the_band_where_it_holds_structure_and_drops_it_where_it_is_noise():
    """`local_band_gain`: 1 everywhere for an empty band; over a band of noise mostly low, except on a blob of
    structure added to it, where it is near 1."""
    from bundle.transforms.native_grid import local_band_gain

    rng = np.random.default_rng(0)
    image = np.full((40, 40, 40), 10.0)
    brain = np.ones(image.shape, dtype=bool)
    assert np.array_equal(local_band_gain(image, np.zeros_like(image), brain, 2.0, 1.5), np.ones_like(image))
    noise = rng.standard_normal(image.shape)
    blob = np.zeros_like(image)
    blob[18:22, 18:22, 18:22] = 8.0
    gain = local_band_gain(image, noise + blob, brain, 2.0, 1.5)
    assert gain.shape == image.shape and 0.0 <= gain.min() and gain.max() <= 1.0
    assert np.median(gain[:10]) < 0.2 < 0.9 < gain[19:21, 19:21, 19:21].min()


def test_the_local_gain_option_raises_the_read_gain_voxel_by_voxel_and_is_part_of_the_run_identity(
    tiny_dataset, tmp_path
):
    """With `detail_local_gain`, the kept share of the band is max(w, local gain) at each voxel: a zero correction
    returns w(x) x input + (1 - w(x)) x round trip, between the read gain's output and the input; a bad setting is
    refused in one line; a rerun with it redoes studies made without it, whose records still match without it."""
    from bundle.deploy.study_identity import identity_differences, run_identity
    from bundle.metrics.image_quality import estimate_support_mask
    from bundle.transforms.native_grid import local_band_gain

    path, data = _off_grid_study(tiny_dataset, tmp_path)

    def run(local):
        preprocessing, shipped = inference_components(
            {
                "device": "cpu",
                "precision": "fp32",
                "detail_local_gain": local,
                "detail_reading": {"intercept": 0.3, "slope": 0.0},
            }
        )
        item = preprocessing({"image": str(path)})
        item["pred"] = item["image"][:1].clone()  # a zero correction
        item["dose_used"] = None
        out = shipped.postprocessing(item)
        return out["pred"][0].numpy().astype(np.float64), out["detail_weight"]

    plain, w = run(None)
    assert w == pytest.approx(0.3)
    roundtrip = (plain - w * data) / (1 - w)  # the study's round trip through the 2 mm grid, recovered
    setting = {"sigma_voxels": 2.0, "noise_factor": 1.5}
    local, w_local = run(setting)
    assert w_local == pytest.approx(0.3)
    gain = np.maximum(w, local_band_gain(data, data - roundtrip, estimate_support_mask(data), **setting))
    np.testing.assert_allclose(local, gain * data + (1 - gain) * roundtrip, rtol=0, atol=1e-4 * data.max())
    assert gain.max() > w and (np.abs(local - data) <= np.abs(plain - data) + 1e-4 * data.max()).all()
    with pytest.raises(Exception, match="detail_local_gain"):
        run({"sigma_voxels": 0.0, "noise_factor": 1.0})
    without = run_identity("torch", {"torch": "models/model.pt"}, drf=20.0)
    with_local = run_identity("torch", {"torch": "models/model.pt"}, drf=20.0, detail_local_gain=dict(setting, x=1))
    assert with_local["detail_local_gain"] == setting
    assert [d.split(" ")[0] for d in identity_differences(without, with_local)] == ["detail_local_gain"]
    assert identity_differences({k: v for k, v in without.items() if k != "detail_local_gain"}, without) == []
