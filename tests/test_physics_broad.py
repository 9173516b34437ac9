"""Issue 29's physics broadening: the drawn detector-response tail, reconstruction and background of the
generalist-train-broad cohort, and the profile that trains on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bundle.errors import ConfigValueError
from bundle.simulation.acquisition import ScannerModel, simulate_acquisition
from bundle.simulation.cohorts import COHORTS
from bundle.simulation.presets import PRESETS, SimulationConfig
from bundle.simulation.projector import ParallelBeamProjector
from bundle.simulation.scanner_draw import (
    ITERATION_CHOICES,
    PHYSICS_RANGES,
    SUBSET_CHOICES,
    draw_physics,
    draw_scanner,
)
from bundle.simulation.subject_volumes import simulate_subject_volumes

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_physics_draws_stay_in_their_ranges_and_cover_each_choice():
    draws = [draw_physics(np.random.default_rng([1000, k, 7])) for k in range(60)]
    for draw in draws:
        for name in ("scatter_fraction", "randoms_fraction", "psf_tail_factor"):
            lo, hi = PHYSICS_RANGES[name]
            assert lo <= getattr(draw, name) <= hi
        lo, hi = PHYSICS_RANGES["psf_tail_fraction"]
        assert draw.psf_tail_fraction == 0.0 or lo <= draw.psf_tail_fraction <= hi
        assert draw.iterations in ITERATION_CHOICES and draw.subsets in SUBSET_CHOICES
    assert {d.model_psf for d in draws} == {True, False}
    assert {d.psf_tail_fraction == 0.0 for d in draws} == {True, False}
    assert {d.iterations for d in draws} == set(ITERATION_CHOICES) and {d.subsets for d in draws} == set(SUBSET_CHOICES)
    assert draw_physics(np.random.default_rng([1000, 3, 7])) == draws[3]  # a pure function of its stream


def test_a_tailed_detector_response_keeps_the_counts_and_spreads_them_wider():
    projector = ParallelBeamProjector(image_size=32, n_views=28, pixel_size_mm=2.0, n_subsets=4, device="cpu")
    activity = np.zeros((32, 32, 4), np.float32)
    activity[15:17, 15:17, 1:3] = 1.0  # a point-like source at the centre
    mu = np.zeros_like(activity)
    gaussian = ScannerModel(4.5, 4.5, 0.3, 0.1)
    tailed = ScannerModel(4.5, 4.5, 0.3, 0.1, psf_tail_fraction=0.3, psf_tail_factor=3.0)
    assert gaussian.response_fwhm_mm() == [(1.0, (4.5, 4.5))]
    weights, widths = zip(*tailed.response_fwhm_mm())
    assert sum(weights) == pytest.approx(1.0) and widths[1][0] == pytest.approx(13.5) and widths[1][1] == 4.5
    profiles = {}
    for name, scanner in (("gaussian", gaussian), ("tailed", tailed)):
        acq = simulate_acquisition(activity, mu, projector, (2.0, 2.0, 2.0), scanner, 1e7, resolution_space="sinogram")
        assert float(acq.expected_prompts.sum()) == pytest.approx(1e7, rel=1e-4)  # the count level is the prompts
        profiles[name] = acq.expected_trues.sum(dim=(0, 1)).numpy()
        profiles[name] /= profiles[name].sum()
    far = np.abs(np.arange(32) - 15.5) > 5  # more than 10 mm from the source
    assert profiles["tailed"][far].sum() > 3 * profiles["gaussian"][far].sum()
    assert profiles["tailed"].max() < profiles["gaussian"].max()


def test_broad_physics_needs_a_randomised_scanner_and_the_narrow_cohorts_keep_their_settings_hash():
    with pytest.raises(ConfigValueError, match="setting physics_spread: 'broad' needs a randomised scanner"):
        SimulationConfig(physics_spread="broad")
    with pytest.raises(ConfigValueError, match="setting physics_spread: expected one of"):
        SimulationConfig(scanner="randomised", physics_spread="wide")
    narrow = SimulationConfig(**COHORTS["generalist-train-lesions"].settings)
    broad = SimulationConfig(**COHORTS["generalist-train-broad"].settings)
    assert "physics_spread" not in narrow.data_settings()  # existing datasets are not simulated again
    assert broad.data_settings() == {**narrow.data_settings(), "physics_spread": "broad"}


def test_a_broad_subject_is_the_narrow_one_with_its_own_physics_drawn_and_recorded():
    settings = {**COHORTS["generalist-train-broad"].settings, "preset": "tiny", "drfs": (200.0,), "device": "cpu"}
    broad = SimulationConfig(**settings)
    narrow = broad.with_updates(physics_spread="narrow")
    projector = ParallelBeamProjector(image_size=32, n_views=28, pixel_size_mm=2.0, n_subsets=28, device="cpu")
    k = next(k for k in range(20) if not draw_physics(np.random.default_rng([broad.seed, k, 7])).model_psf)
    volumes_b, _, info_b = simulate_subject_volumes(k, broad, projector)
    volumes_n, _, info_n = simulate_subject_volumes(k, narrow, projector)
    assert info_b["scanner"] == info_n["scanner"]  # the same grid, resolution core, post-filter and counts
    assert info_b["count_level_factor"] == info_n["count_level_factor"] and "physics" not in info_n
    expected = draw_physics(np.random.default_rng([broad.seed, k, 7])).as_dict()
    assert info_b["physics"] == expected and info_b["physics"]["model_psf"] is False
    np.testing.assert_array_equal(volumes_b["truth"], volumes_n["truth"])
    assert not np.allclose(volumes_b["pet_full"], volumes_n["pet_full"])  # another reconstruction of other data
    draw = draw_scanner(np.random.default_rng([broad.seed, k, 4]), PRESETS["tiny"])
    assert info_b["scanner"]["detector_fwhm_mm"] == pytest.approx(draw.detector_fwhm_mm, abs=1e-3)
    assert torch.isfinite(torch.as_tensor(volumes_b["pet_drf200"])).all()


def test_the_physics_broad_profile_trains_the_shipped_recipe_on_the_broad_cohort_into_its_own_folder(tmp_path):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    files = ["train.json", "profiles/generalist.json", "profiles/lesion_rich.json", "profiles/physics_broad.json"]
    parser.read_config([str(REPO_ROOT / "configs" / f) for f in files])
    parser.update({"bundle_root": str(tmp_path), "loss_name": "uptake-l1"})
    assert parser.get_parsed_content("output_dir") == str(tmp_path / "runs/generalist/physics-broad-uptake-l1")
    assert parser.get_parsed_content("dataset_dir") == str(tmp_path / "data/cohorts/generalist_train_broad")
    assert "'generalist-train-broad'" in parser["datalist_file"]  # simulated on a fresh clone
    assert parser.get_parsed_content("tracking#run_name") == "physics-broad-uptake-l1"
