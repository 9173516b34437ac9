"""The noise-level estimate, and inference's warning for studies outside the noise range the weights were trained on."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import REPO_ROOT, run_bundle
from scipy import ndimage

from bundle.deploy.noise_check import NoiseLevelCheck, trained_noise_level, trained_noise_range
from bundle.io import file_sha256, load_ras_volume
from bundle.metrics.noise import estimate_noise_level


def test_noise_estimate_matches_white_noise_theory_and_is_scale_free():
    rng = np.random.default_rng(0)
    shape, level, sigma = (64, 64, 40), 100.0, 5.0
    volume = np.full(shape, level) + rng.normal(0.0, sigma, shape)
    volume[:4], volume[-4:] = 0.0, 0.0  # a support with an edge, as PET images have
    delta = np.zeros((15, 15, 15))
    delta[7, 7, 7] = 1.0
    g = ndimage.gaussian_filter(delta, 1.0)  # the smoothing kernel's weights
    residual_sd = sigma * np.sqrt(1.0 - 2.0 * g[7, 7, 7] + np.sum(g**2))  # sd of x - G x for white noise
    expected = residual_sd / (level + 0.6745 * sigma)  # over the support's 75th percentile
    assert estimate_noise_level(volume) == pytest.approx(expected, rel=0.03)
    assert estimate_noise_level(1000.0 * volume) == pytest.approx(estimate_noise_level(volume), rel=1e-5)
    louder = np.where(volume > 0, level + 2 * (volume - level), 0.0)
    assert estimate_noise_level(louder) > 1.8 * estimate_noise_level(volume)


def test_check_flags_only_studies_outside_the_tolerated_range():
    image = np.random.default_rng(1).normal(100.0, 10.0, (1, 48, 48, 24)).clip(0)
    image[:, :4] = 0.0
    level = estimate_noise_level(image[0])
    assert NoiseLevelCheck(None)("s", image) is None
    assert NoiseLevelCheck((level / 1.1, level * 1.1))("s", image) is None
    warning = NoiseLevelCheck((level * 1.3 / 0.8, level * 2.0))("study-7", image)
    assert warning.startswith("study study-7: estimated noise level") and "lower dose reduction" in warning
    assert "noisier" in NoiseLevelCheck((level / 2.0, level / 1.3 / 1.25))("s", image)


def test_range_is_used_only_for_the_weights_it_was_recorded_for(tmp_path):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"weights")
    provenance = tmp_path / "model_provenance.json"
    provenance.write_text(json.dumps({"sha256": file_sha256(weights), "trained_noise_level": {"min": 0.1, "max": 0.2}}))
    assert trained_noise_range(provenance, weights) == (0.1, 0.2)
    other = tmp_path / "mine.pt"
    other.write_bytes(b"my own weights")
    assert trained_noise_range(provenance, other) is None  # a user's checkpoint: no check
    assert trained_noise_range(tmp_path / "missing.json", weights) is None


def test_inference_warns_by_name_for_a_study_of_another_dose(tiny_trained, tmp_path):
    from bundle.simulation import SimulationConfig, simulate_dataset

    data = tmp_path / "data"
    config = SimulationConfig(preset="tiny", slices=16, n_subjects=1, seed=11, drfs=(20.0, 200.0), device="cpu")
    simulate_dataset(data, config, progress=False)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for drf in (20, 200):
        shutil.copyfile(data / "sub-001" / f"sub-001_pet_drf{drf}.nii.gz", inputs / f"study_drf{drf}.nii.gz")
    weights = tiny_trained / "checkpoints" / "model.pt"
    record = trained_noise_level([{"subject": "sub-001", "image": str(data / "sub-001" / "sub-001_pet_drf200.nii.gz")}])
    provenance = tmp_path / "model_provenance.json"
    provenance.write_text(json.dumps({"sha256": file_sha256(weights), "trained_noise_level": record}))
    low20 = estimate_noise_level(load_ras_volume(inputs / "study_drf20.nii.gz"))
    assert low20 < 0.8 * record["min"]  # the premise: DRF 20 is clearly less noisy
    overrides = {
        "bundle_root": str(REPO_ROOT),
        "ckpt_path": str(weights),
        "provenance_file": str(provenance),
        "dataset_dir": str(inputs),
        "output_dir": str(tmp_path / "out"),
        "progress": False,
        "precision": "fp32",
        "training_spacing": [4.0, 4.0, 4.0],
        "network_def#base_features": 4,
    }
    proc = run_bundle("run", [str(REPO_ROOT / "configs" / "inference.json")], overrides)
    assert proc.returncode == 0, proc.stderr[-2000:]
    output = proc.stdout + proc.stderr  # the bundle's logging.conf logs to stdout
    warnings = [line for line in output.splitlines() if "WARNING" in line and "estimated noise level" in line]
    assert len(warnings) == 1 and "study study_drf20:" in warnings[0]
    assert "2 denoised" in proc.stdout and "(warning: study study_drf20" in proc.stdout
