"""The generalist model: its cohorts (varied anatomy, randomised scanners), dose sampling and conditioning, its loss,
and its training and evaluation end to end on tiny cohorts."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import REPO_ROOT, load_script, run_bundle, tiny_overrides, user_error_line

from bundle.data import cohort_split, load_datalist
from bundle.deploy.export import record_run_entry
from bundle.errors import ConfigValueError, InputDataError
from bundle.generalist import TrainedDenoiser
from bundle.io import file_sha256, load_ras_volume
from bundle.losses import LesionWeightedL1Loss, UptakeLesionWeightedL1Loss, UptakeWeightedL1Loss, image_loss
from bundle.mlflow_tracking import default_tracking_uri
from bundle.networks import ResidualUNet2p5D
from bundle.noise_estimation import ImageCodeDrfd, NoiseEstimator
from bundle.release import restate_generalist
from bundle.simulation import SimulationConfig, simulate_dataset
from bundle.simulation.cohorts import COHORTS
from bundle.simulation.phantom import VARIED_ANATOMY, varied_tissue_model
from bundle.simulation.presets import PRESETS
from bundle.simulation.projector import GaussianBlur3d, ParallelBeamProjector, PETSystemModel, SinogramBlur
from bundle.simulation.scanner_draw import SCANNER_RANGES, draw_scanner, native_geometry, resample_to_grid
from bundle.transforms import (
    AppendLossWeightd,
    DoseCoded,
    DoseLevelScalesd,
    LesionLossWeightd,
    RandDoseCodeSpreadd,
    RandDoseLeveld,
    dose_code,
    lesion_loss_weight,
)

TINY_COHORT = {"preset": "tiny", "drfs": (4.0, 20.0, 200.0), "device": "cpu"}


def _tiny_cohort(name: str, n_subjects: int, **changes) -> SimulationConfig:
    return SimulationConfig(**{**COHORTS[name].settings, **TINY_COHORT, "n_subjects": n_subjects, **changes})


@pytest.fixture(scope="session")
def tiny_cohorts(tmp_path_factory) -> dict[str, Path]:
    """A 4-subject tiny training cohort (randomised scanners, varied anatomy) and a 2-subject new-anatomy cohort."""
    out = {}
    for name, n, slab in (("generalist-train", 4, {}), ("new-anatomy", 2, {"slices": 16})):
        folder = tmp_path_factory.mktemp(name)
        simulate_dataset(folder, _tiny_cohort(name, n, **slab), progress=False)
        out[name] = folder
    return out


def test_scanner_draws_stay_in_their_ranges_and_grids_resample_onto_the_preset():
    base = PRESETS["quick"]
    for seed in range(20):
        draw = draw_scanner(np.random.default_rng(seed), base)
        lo, hi = SCANNER_RANGES["in_plane_voxel_mm"]
        assert lo - 0.02 <= draw.in_plane_voxel_mm <= hi + 0.04
        assert (
            SCANNER_RANGES["axial_voxel_mm"][0] - 0.03
            <= draw.axial_voxel_mm
            <= SCANNER_RANGES["axial_voxel_mm"][1] + 0.07
        )
        assert 3.5 <= draw.detector_fwhm_mm <= 6.5 and 0.0 <= draw.postfilter_fwhm_mm <= 5.0
        assert abs(draw.recon_psf_mm[0] - draw.detector_fwhm_mm) <= 1.0
        grid = native_geometry(base, draw)
        assert grid.n_views % 28 == 0
        fov = np.asarray(grid.shape) * np.asarray(grid.voxel_size_mm)
        np.testing.assert_allclose(fov, np.asarray(base.shape) * np.asarray(base.voxel_size_mm), rtol=0.02)
    volume = np.random.default_rng(0).random(base.shape).astype(np.float32)
    np.testing.assert_array_equal(resample_to_grid(volume, base, base, order=1), volume)  # same grid: unchanged
    coarse = native_geometry(base, draw_scanner(np.random.default_rng(1), base))
    labels = (volume > 0.5).astype(np.uint8)
    moved = resample_to_grid(labels, base, coarse, order=0)
    assert moved.shape == coarse.shape and set(np.unique(moved)) <= {0, 1}


def test_sinogram_blur_is_self_adjoint_and_close_to_the_image_blur():
    projector = ParallelBeamProjector(image_size=32, n_views=56, pixel_size_mm=2.0, n_subsets=4, device="cpu")
    factors = torch.rand(6, 56, 32, generator=torch.Generator().manual_seed(0)) + 0.5
    model = PETSystemModel(projector, factors, None, SinogramBlur((4.5, 5.0), 2.0, 2.0))
    x, y = torch.rand(6, 32, 32), torch.rand(6, 56, 32)
    for subset in (None, 1):
        ys = y if subset is None else y[:, projector.subset_views(subset)]
        lhs = float((model.A(x, subset) * ys).sum())
        assert lhs == pytest.approx(float((x * model.A_adjoint(ys, subset)).sum()), rel=1e-5)
    image_space = PETSystemModel(projector, torch.ones(6, 56, 32), GaussianBlur3d((4.5, 5.0), (2.0, 2.0, 2.0)))
    sinogram_space = PETSystemModel(projector, torch.ones(6, 56, 32), None, SinogramBlur((4.5, 5.0), 2.0, 2.0))
    phantom = torch.zeros(6, 32, 32)
    phantom[2:5, 8:14, 18:24] = 1.0
    a, b = image_space.A(phantom), sinogram_space.A(phantom)
    assert float((a - b).abs().max() / a.max()) < 0.05


def test_varied_anatomy_draws_in_its_ranges_and_the_default_dataset_keeps_its_settings_hash():
    model, drawn = varied_tissue_model(np.random.default_rng(0))
    for key, (lo, hi) in VARIED_ANATOMY.items():
        assert lo <= drawn[key] <= hi
    assert model.gyral_deformation_rms_mm == pytest.approx(drawn["gyral_deformation_rms_mm"], abs=1e-3)
    assert model.ventricle_expansion == pytest.approx(0.3 * drawn["atrophy"], abs=1e-3)
    settings = SimulationConfig().data_settings()
    assert not {"anatomy", "scanner", "resolution_space", "count_sampler", "lesions"} & set(settings)
    with pytest.raises(ConfigValueError, match="setting scanner"):
        SimulationConfig(scanner="random")
    with pytest.raises(ConfigValueError, match="setting slices"):
        SimulationConfig(scanner="randomised", slices=8)


def test_cohorts_are_simulated_the_same_with_one_or_two_workers_and_describe_their_draws(tiny_cohorts, tmp_path):
    folder = tiny_cohorts["generalist-train"]
    manifest = json.loads((folder / "manifest.json").read_text())
    scanners = [info["scanner"] for info in manifest["subjects"].values()]
    assert len({s["in_plane_voxel_mm"] for s in scanners}) == len(scanners)  # each subject its own scanner
    assert all("anatomy_variation" in info for info in manifest["subjects"].values())
    two = tmp_path / "two_workers"
    simulate_dataset(two, _tiny_cohort("generalist-train", 2), progress=False, workers=2)
    for sid in ("sub-001", "sub-002"):  # the counts are the same; OSEM's float sums differ in their last bits
        for name in ("lesion_mask", "brain_mask", "truth"):
            rel = f"{sid}/{sid}_{name}.nii.gz"
            assert file_sha256(two / rel) == file_sha256(folder / rel), rel
        for name in ("pet_full", "pet_drf20", "pet_drf200"):
            a, b = (load_ras_volume(f / sid / f"{sid}_{name}.nii.gz") for f in (two, folder))
            assert float(np.abs(a - b).max()) <= 1e-3 * float(b.max()), name
    with pytest.raises(ConfigValueError, match="setting workers"):
        simulate_dataset(tmp_path / "legacy", SimulationConfig(preset="tiny", n_subjects=2), workers=2)


def test_simulate_script_takes_a_cohort_and_lets_options_override_it():
    simulate = load_script("simulate")
    args = simulate.build_parser().parse_args(["--cohort", "new-anatomy", "--subjects", "3", "--preset", "tiny"])
    config = simulate.config_from_args(args)
    assert (config.anatomy, config.lesions, config.count_sampler, config.seed) == ("varied", "mix", "inverse_cdf", 2000)
    assert (config.n_subjects, config.preset) == (3, "tiny")
    plain = simulate.config_from_args(simulate.build_parser().parse_args(["--output-dir", "x"]))
    assert plain == SimulationConfig()
    with pytest.raises(ConfigValueError, match="setting cohort"):
        simulate.config_from_args(simulate.build_parser().parse_args(["--cohort", "nope"]))


def test_dose_sampling_keeps_each_pair_matched_and_codes_the_dose():
    volume = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4) + 1
    item = {"image_drf20": volume * 2, "image_drf200": volume * 5, "label": volume.clone(), "subject": "s"}
    item = DoseLevelScalesd([20, 200])(item)
    sampler = RandDoseLeveld([20, 200])
    sampler.set_random_state(0)
    seen = set()
    for _ in range(20):
        out = sampler(item)
        seen.add(out["drf"])
        scale = item[f"image_drf{out['drf']:g}_scale"]
        torch.testing.assert_close(out["image"], item[f"image_drf{out['drf']:g}"] / scale)
        torch.testing.assert_close(out["label"], item["label"] / scale)
        assert not any(k.startswith("image_drf") for k in out)
    assert seen == {20.0, 200.0}
    coded = DoseCoded()(dict(out))
    assert coded["dose"].shape == out["image"].shape
    assert float(coded["dose"].mean()) == pytest.approx(dose_code(out["drf"]))
    assert dose_code(200) == pytest.approx(1.0) and dose_code(1) == 0.0
    with pytest.raises(ConfigValueError, match="needs its DRF"):
        DoseCoded()({"image": volume})
    with pytest.raises(ConfigValueError, match="setting drf"):
        dose_code(0.5)


def test_code_spread_draws_the_code_drf_around_the_label_within_its_factor_and_keeps_the_label():
    item = {"image": torch.ones(1, 2, 2, 2), "drf": 20.0, "labelled_drf": 20.0, "subject": "s"}
    spread = RandDoseCodeSpreadd(2.0)
    spread.set_random_state(0)
    drawn = np.log2([spread(item)["drf"] / 20.0 for _ in range(400)])
    assert drawn.min() >= -2.0 and drawn.max() <= 2.0
    assert drawn.min() < -1.8 and drawn.max() > 1.8 and abs(drawn.mean()) < 0.2  # both sides, about uniform
    assert spread(item)["labelled_drf"] == 20.0 and item["drf"] == 20.0  # the item itself untouched
    again = RandDoseCodeSpreadd(2.0)
    again.set_random_state(0)
    assert np.allclose(np.log2([again(item)["drf"] / 20.0 for _ in range(400)]), drawn)  # seeded
    full = RandDoseCodeSpreadd(2.0)
    full.set_random_state(1)
    assert min(full({**item, "drf": 2.0})["drf"] for _ in range(100)) == 1.0  # floored at the full dose
    assert RandDoseCodeSpreadd(0.0)(item)["drf"] == 20.0
    with pytest.raises(ConfigValueError, match="code_spread_log2"):
        RandDoseCodeSpreadd(-1.0)
    with pytest.raises(InputDataError, match="no drf to spread"):
        RandDoseCodeSpreadd(1.0)({"image": item["image"], "subject": "s"})


@pytest.mark.parametrize("spread", [0, 2])
def test_the_code_spread_setting_puts_the_spread_before_the_code_and_names_the_run(spread, tmp_path):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    files = ["configs/train.json", "configs/profiles/generalist.json", "configs/profiles/lesion_rich.json"]
    parser.read_config([str(REPO_ROOT / f) for f in files])
    parser.update({"bundle_root": str(tmp_path), "loss_name": "uptake-l1", "code_spread_log2": spread})
    names = [type(t).__name__ for t in parser.get_parsed_content("train#preprocessing").transforms]
    assert ("RandDoseCodeSpreadd" in names) == bool(spread)
    if spread:
        assert names.index("RandDoseLeveld") < names.index("RandDoseCodeSpreadd") < names.index("DoseCoded")
    suffix = "-code-spread2" if spread else ""
    assert parser.get_parsed_content("output_dir").endswith(f"lesion-rich-uptake-l1{suffix}")
    assert parser.get_parsed_content("loss_settings")["code_spread_log2"] == spread  # recorded with the run
    validation = [type(t).__name__ for t in parser.get_parsed_content("validate#preprocessing").transforms]
    assert "RandDoseCodeSpreadd" not in validation  # validated (and evaluated) with the true code


def test_an_untrained_dose_conditioned_network_is_the_plain_one_and_training_can_use_the_dose():
    torch.manual_seed(0)
    plain = ResidualUNet2p5D(base_features=4)
    conditioned = ResidualUNet2p5D(base_features=4, extra_channels=1, dose_conditioning=True)
    conditioned.load_state_dict(plain.state_dict(), strict=False)
    x = torch.rand(2, 3, 32, 32)
    codes = torch.full((2, 1, 32, 32), 0.7)
    torch.testing.assert_close(conditioned(torch.cat([x, codes], 1)), plain(x))
    torch.nn.init.normal_(conditioned.film.mlp[2].weight)
    low, high = conditioned(torch.cat([x, codes * 0], 1)), conditioned(torch.cat([x, codes], 1))
    assert not torch.allclose(low, high)
    with pytest.raises(ValueError, match="dose_conditioning"):
        ResidualUNet2p5D(dose_conditioning=True)


def test_uptake_weighted_l1_counts_errors_in_hot_regions_more():
    target = torch.full((1, 1, 8, 8), 0.5)
    target[..., :2, :2] = 1.5  # a hot spot
    hot_error, cold_error = target.clone(), target.clone()
    hot_error[..., 0, 0] += 0.1
    cold_error[..., 7, 7] += 0.1
    loss = UptakeWeightedL1Loss(weight=4.0)
    assert float(loss(hot_error, target)) > 2 * float(loss(cold_error, target))
    plain = UptakeWeightedL1Loss(weight=0.0)
    assert float(plain(cold_error, target)) == pytest.approx(float(torch.nn.L1Loss()(cold_error, target)))
    assert isinstance(image_loss("uptake-l1", uptake_weight=2.0), UptakeWeightedL1Loss)


def test_lesion_weights_cover_each_lesion_and_its_margin_and_ride_unscaled_on_the_label():
    lesions = np.zeros((9, 9, 9), dtype=np.uint8)
    lesions[4, 4, 4] = 3
    weights = lesion_loss_weight(lesions, (2.0, 2.0, 2.0), weight=5.0, margin_mm=4.0)
    assert weights[4, 4, 4] == 6.0 and weights[4, 4, 6] == 6.0 and weights[4, 4, 7] == 1.0  # 4 mm = 2 voxels
    assert weights[4, 6, 6] == 1.0  # 5.7 mm away on the diagonal
    assert np.array_equal(lesion_loss_weight(lesions * 0, (2.0,) * 3, 5.0, 4.0), np.ones((9, 9, 9)))
    full = torch.rand(1, 9, 9, 9) + 1.0
    item = {"subject": "s", "image_drf4": full * 0.9, "image_drf4_scale": 2.0, "label": full, "lesion": lesions[None]}
    item = LesionLossWeightd(weight=5.0, margin_mm=4.0)(item)
    assert "lesion" not in item and item["loss_weight"].shape == (1, 9, 9, 9)
    item = AppendLossWeightd()(RandDoseLeveld([4])(item))
    assert item["label"].shape == (2, 9, 9, 9) and "loss_weight" not in item
    torch.testing.assert_close(item["label"][0], full[0] / 2.0)
    assert float(item["label"][1, 4, 4, 4]) == 6.0  # the weights are not divided by the dose level's scale
    with pytest.raises(InputDataError, match="lesion"):
        LesionLossWeightd()({"subject": "s", "label": full})


def test_lesion_weighted_l1_counts_lesion_errors_more_and_is_plain_l1_with_unit_weights():
    target = torch.full((1, 1, 8, 8), 0.5)
    weights = torch.ones_like(target)
    weights[..., :2, :2] = 6.0  # a lesion
    label = torch.cat([target, weights], 1)
    in_lesion, outside = target.clone(), target.clone()
    in_lesion[..., 0, 0] += 0.1
    outside[..., 7, 7] += 0.1
    loss = image_loss("lesion-l1")
    assert isinstance(loss, LesionWeightedL1Loss)
    assert float(loss(in_lesion, label)) == pytest.approx(6 * float(loss(outside, label)))
    unit = torch.cat([target, torch.ones_like(target)], 1)
    assert float(loss(outside, unit)) == pytest.approx(float(torch.nn.L1Loss()(outside, target)))
    with pytest.raises(ConfigValueError, match="lesion-l1"):
        loss(outside, target)


def test_uptake_lesion_l1_adds_the_lesion_weights_to_the_uptake_ramp():
    target = torch.full((1, 1, 8, 8), 0.5)
    target[..., 6:, 6:] = 1.5  # hot: full uptake weight 4
    lesion_weights = torch.ones_like(target)
    lesion_weights[..., :2, :2] = 6.0  # a lesion of normal uptake (an MR-only lesion)
    loss = image_loss("uptake-lesion-l1")
    assert isinstance(loss, UptakeLesionWeightedL1Loss)
    pred = target + 0.1 * torch.rand(generator=torch.Generator().manual_seed(0), size=target.shape)
    weights = lesion_weights + 4.0 * ((target - 0.8) / 0.4).clamp(0, 1)
    expected = float((weights * (pred - target).abs()).sum() / weights.sum())
    assert float(loss(pred, torch.cat([target, lesion_weights], 1))) == pytest.approx(expected, rel=1e-6)
    unit = torch.cat([target, torch.ones_like(target)], 1)  # no lesion: the uptake-weighted L1 itself
    assert float(loss(pred, unit)) == pytest.approx(float(UptakeWeightedL1Loss()(pred, target)), rel=1e-6)
    with pytest.raises(ConfigValueError, match="uptake-lesion-l1"):
        loss(pred, target)


def test_suv_consistency_training_carries_the_lesion_ids_unscaled_on_the_label_and_trains(tiny_cohorts, tmp_path):
    from monai.bundle import ConfigWorkflow

    from bundle.losses import LesionSUVConsistencyLoss

    train = tiny_cohorts["generalist-train"]
    overrides = tiny_overrides(train, tmp_path / "run", num_val_subjects=1, val_interval=1, train_drfs=[4, 200])
    overrides.update({"test_datalists": [], "val_drfs": [200], "loss_name": "uptake-l1-suv", "suv_weight": 0.05})
    overrides["tracking#tracking_uri"] = default_tracking_uri(tmp_path)
    files = [str(REPO_ROOT / "configs" / f) for f in ("train.json", "profiles/generalist.json")]
    wf = ConfigWorkflow(config_file=files, workflow_type=None, logging_file=False, **overrides)
    wf.initialize()
    loss = wf.parser.get_parsed_content("loss")
    assert isinstance(loss, LesionSUVConsistencyLoss) and loss.suv_weight == 0.05
    item = wf.parser.get_parsed_content("train#dataset")[0]
    item = item[0] if isinstance(item, list) else item
    subject = next(s for s in load_datalist(str(train / "datalist.json")) if s["subject"] == item["subject"])
    lesion_ids = set(np.unique(load_ras_volume(subject["lesion"])).tolist())
    assert item["label"].shape[0] == 2 and "lesion" not in item
    assert set(torch.unique(item["label"][1]).tolist()) <= lesion_ids  # ids, not divided by the dose level's scale
    wf.run()
    settings = json.loads((tmp_path / "run" / "checkpoints" / "manifest.json").read_text())["settings"]
    assert settings["loss"] == "uptake-l1-suv" and settings["suv_weight"] == "0.05"


def test_noise_balanced_dose_blind_training_appends_the_balance_weight_last_and_trains(tiny_cohorts, tmp_path):
    from monai.bundle import ConfigWorkflow

    from bundle.losses import LesionSUVConsistencyLoss, NoiseBalancedLoss

    train = tiny_cohorts["generalist-train"]
    overrides = tiny_overrides(train, tmp_path / "run", num_val_subjects=1, val_interval=1, train_drfs=[4, 200])
    overrides.update({"test_datalists": [], "val_drfs": [200], "loss_name": "uptake-l1-suv"})
    overrides.update({"dose_conditioning": False, "noise_balanced": True})
    overrides["tracking#tracking_uri"] = default_tracking_uri(tmp_path)
    files = [str(REPO_ROOT / "configs" / f) for f in ("train.json", "profiles/generalist.json")]
    wf = ConfigWorkflow(config_file=files, workflow_type=None, logging_file=False, **overrides)
    wf.initialize()
    loss = wf.parser.get_parsed_content("loss")
    assert isinstance(loss, NoiseBalancedLoss) and isinstance(loss.inner, LesionSUVConsistencyLoss)
    assert wf.parser.get_parsed_content("tracking#run_name") == "dose-blind-uptake-l1-suv-balanced"
    pipeline = wf.parser.get_parsed_content("train#preprocessing").transforms
    names = [type(t).__name__ for t in pipeline]
    assert names.index("AppendLossWeightd") < names.index("AppendNoiseBalanceWeightd") < names.index("RandAxialSlicesd")
    assert "DoseCoded" not in names  # dose-blind: no code channel
    cut = names.index("AppendNoiseBalanceWeightd") + 1  # before the image is stacked into 2.5D channels
    volumes = wf.parser.get_parsed_content("train#dataset").data  # the datalist items, before any transform
    item = volumes[0]
    for t in pipeline[:cut]:
        item = t(item)
    label, image, brain = item["label"], item["image"][0], item["mask"][0] > 0.5
    assert label.shape[0] == 3  # full dose, lesion ids, balance weight
    expected = 1.0 / float((image - label[0]).abs()[brain].mean())
    assert torch.unique(label[2]).tolist() == pytest.approx([expected], rel=1e-5)
    wf.run()
    settings = json.loads((tmp_path / "run" / "checkpoints" / "manifest.json").read_text())["settings"]
    assert settings["noise_balanced"] == "True" and settings["dose_conditioning"] == "False"


def test_cohort_split_refuses_a_test_set_that_is_in_the_training_data(tiny_cohorts):
    datalist = str(tiny_cohorts["generalist-train"] / "datalist.json")
    split = cohort_split(
        datalist, num_val=1, val_drfs=(20.0, 200.0), test_datalists=[str(tiny_cohorts["new-anatomy"] / "datalist.json")]
    )
    assert len(split["train"]) == 3 and [i["drf"] for i in split["val"]] == [20.0, 200.0]
    with pytest.raises(InputDataError, match="fold isolation"):
        cohort_split(datalist, num_val=1, test_datalists=[datalist])


def test_generalist_profile_trains_dose_conditioned_and_is_evaluated_against_every_target(
    tiny_cohorts, tiny_dataset, tmp_path
):
    train = tiny_cohorts["generalist-train"]
    overrides = tiny_overrides(train, tmp_path / "run", num_val_subjects=1, val_interval=1)
    overrides["tracking#tracking_uri"] = default_tracking_uri(tmp_path)  # never the repository's runs/generalist store
    overrides.update(
        {
            "datalist_file": str(train / "datalist.json"),
            "test_datalists": [str(tiny_dataset / "datalist.json"), str(tiny_cohorts["new-anatomy"] / "datalist.json")],
            "train_drfs": [4, 20, 200],
            "val_drfs": [20, 200],
        }
    )
    proc = run_bundle("training", ["configs/train.json", "configs/profiles/generalist.json"], overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    checkpoints = tmp_path / "run" / "checkpoints"
    assert (checkpoints / "best.pt").is_file()
    settings = json.loads((checkpoints / "manifest.json").read_text())["settings"]
    assert settings["dose_conditioning"] == "True" and "200" in settings["train_drfs"]
    evaluate = load_script("evaluate_generalist")
    out = tmp_path / "report"
    args = ["--run", f"conditioned={checkpoints}", f"again={checkpoints}"]  # a second run: the side-by-side table
    args += ["--paper-datalist", str(tiny_dataset / "datalist.json")]
    new_anatomy = str(tiny_cohorts["new-anatomy"] / "datalist.json")
    # the new-anatomy subjects stand in for a new-scanners cohort too: the third test set's plumbing, not its data
    args += ["--new-anatomy-datalist", new_anatomy, "--new-scanners-datalist", new_anatomy]
    args += ["--new-scanners-native-datalist", "", "--second-simulator-datalist", ""]  # never the repository's data/
    args += ["--tuning-datalist", str(train / "datalist.json"), "--tuning-subjects", "2", "--drf", "20", "200"]
    assert evaluate.main([*args, "--out", str(out), "--no-progress"]) == 0
    report = (out / "README.md").read_text()
    assert "## Targets: conditioned" in report and "never worse than the input" in report
    assert "new-anatomy margin" in report and "## The new-anatomy cohort" in report
    assert "new-scanners margin within 0.3 dB of the paper subjects' (not an issue target)" in report
    assert "## The new-scanners cohort" in report
    side_by_side = report.split("## Every run side by side")[1].split("\n## ")[0]
    rows = {
        line.split(" | ")[1]: line.split(" | ")[2:] for line in side_by_side.splitlines() if line.startswith("| 200 |")
    }
    loo = "Gaussian (LOO on the test set)"  # the reference: tuned on the test set's other subjects
    assert set(rows) == {"input", loo, "conditioned", "again"}
    assert rows["conditioned"] == rows["again"]  # the same network twice
    assert rows[loo][0] == "reference" and rows["input"][0].startswith("-")  # the input is below the Gaussian
    test_subjects = len(load_datalist(tiny_dataset / "datalist.json")) + 2 + 2
    assert f"/{test_subjects}; smallest gain" in report  # "never worse" counts every subject of every test set
    records = json.loads((out / "results.json").read_text())["records"]
    assert len({r["subject"] for r in records}) == test_subjects
    assert {r["method"] for r in records} == {"low dose", "gaussian", "gaussian-loo", "conditioned", "again"}
    loo_params = {(r["subject"], r["drf"]): r["params"] for r in records if r["method"] == "gaussian-loo"}
    assert len(loo_params) == 2 * test_subjects and all("fwhm_mm" in p for p in loo_params.values())


def test_a_shipped_dose_conditioned_model_takes_the_drf_from_the_setting_or_estimates_it(
    tiny_cohorts, tiny_dataset, tmp_path, caplog, capsys, monkeypatch
):
    import shutil

    train = tiny_cohorts["generalist-train"]
    run = tmp_path / "run"
    overrides = tiny_overrides(train, run, num_val_subjects=1, val_interval=1, train_drfs=[4, 20, 200])
    overrides.update({"datalist_file": str(train / "datalist.json"), "test_datalists": [], "val_drfs": [20]})
    overrides.update({"tracking#tracking_uri": default_tracking_uri(tmp_path), "loss_name": "lesion-l1"})
    proc = run_bundle("training", ["configs/train.json", "configs/profiles/generalist.json"], overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    settings = json.loads((run / "checkpoints" / "manifest.json").read_text())["settings"]
    assert settings["loss"] == "lesion-l1" and settings["lesion_weight"] == "5.0"
    evaluate = load_script("evaluate_generalist")
    report = tmp_path / "report"
    args = ["--run", f"conditioned={run / 'checkpoints'}", "--paper-datalist", str(tiny_dataset / "datalist.json")]
    args += ["--new-anatomy-datalist", "", "--new-scanners-datalist", "", "--new-scanners-native-datalist", ""]
    args += ["--second-simulator-datalist", ""]
    args += ["--tuning-datalist", str(train / "datalist.json"), "--tuning-subjects", "2"]
    assert evaluate.main([*args, "--drf", "20", "200", "--estimated-drf", "--out", str(report), "--no-progress"]) == 0
    results = json.loads((report / "results.json").read_text())
    assert results["drf_estimator"]["slope"] > 0
    assert "conditioned, estimated DRF" in {r["method"] for r in results["records"]}
    models, meta = tmp_path / "models", tmp_path / "metadata.json"
    models.mkdir()
    shutil.copy(REPO_ROOT / "configs" / "metadata.json", meta)
    gain = {"detail_drf": 70.0, "cohort": "a native-grid tuning cohort"}  # a detail gain fitted for the run
    record_run_entry(run / "checkpoints", "detail_gain", gain)
    release = load_script("release")
    assert release.main(["--generalist-run", str(run), "--report", str(report / "results.json"),
                         "--models-dir", str(models), "--meta-file", str(meta)]) == 0  # fmt: skip
    provenance = json.loads((models / "model_provenance.json").read_text())
    assert provenance["dose_conditioning"] and provenance["drf_estimator"] and provenance["trained_noise_level"]
    assert provenance["detail_gain"] == gain  # carried from the run's best_provenance.json
    without = {k: v for k, v in results.items() if k != "drf_estimator"}  # a report made without --estimated-drf
    (report / "no_estimator.json").write_text(json.dumps(without))
    assert release.main(["--generalist-run", str(run), "--report", str(report / "no_estimator.json"),
                         "--models-dir", str(tmp_path / "models2"), "--meta-file", str(meta), "--no-exports"]) == 0  # fmt: skip
    fitted = json.loads((tmp_path / "models2" / "model_provenance.json").read_text())["drf_estimator"]
    assert fitted["cohort"] == str(train / "datalist.json") and fitted["slope"] > 0  # fitted on its training cohort
    # an inference default changed: the shipped file, measured again, has its results restated; weights untouched
    shipped_sha = file_sha256(models / "model.pt")
    again = tmp_path / "again"
    run_args = ["--run", f"released={models / 'model.pt'}", *args[2:], "--drf", "20", "--no-progress"]
    assert evaluate.main([*run_args, "--out", str(again)]) == 0
    restate = ["--restate", "--report", str(again / "results.json"), "--models-dir", str(models), "--meta-file"]
    assert release.main([*restate, str(meta)]) == 0
    restated = json.loads((models / "model_provenance.json").read_text())
    assert file_sha256(models / "model.pt") == shipped_sha == restated["sha256"]
    assert restated["test_report"]["file"] == str(again / "results.json")
    assert restated["earlier_test_reports"][-1]["file"] == str(report / "results.json")
    assert set(restated["test_summary"]) == {f"paper_drf20_{m}_psnr" for m in ("input", "gaussian", "model")}
    assert json.loads(meta.read_text())["eval_metrics"] == restated["test_summary"]
    assert {e["weights_sha256"] for e in restated["exports"].values()} == {shipped_sha}
    other = json.loads((again / "results.json").read_text())
    other["weights_sha256"] = {"released": "0" * 64}  # a report of other weights: refused, nothing written
    (again / "other.json").write_text(json.dumps(other))
    before = {p.name: file_sha256(p) for p in [*models.iterdir(), meta]}
    message = user_error_line(lambda: restate_generalist(again / "other.json", models, meta))
    assert "measured none of the shipped weights" in message
    assert before == {p.name: file_sha256(p) for p in [*models.iterdir(), meta]}
    volume = tiny_dataset / "sub-002" / "sub-002_pet_drf20.nii.gz"
    released = TrainedDenoiser(models / "model.pt", precision="fp32")
    trained = TrainedDenoiser(run / "checkpoints", precision="fp32")
    assert np.array_equal(released(volume, 20.0), trained(volume, 20.0))  # the released file evaluates as its run
    tampered = tmp_path / "tampered" / "model.pt"
    tampered.parent.mkdir()
    shutil.copy(models / "model.pt", tampered)
    shutil.copy(models / "model_provenance.json", tampered.parent / "model_provenance.json")
    with tampered.open("ab") as handle:
        handle.write(b"0")
    with pytest.raises(InputDataError, match="records no training settings for this file's sha256"):
        TrainedDenoiser(tampered)
    assert json.loads(meta.read_text())["network_data_format"]["inputs"]["image"]["num_channels"] == 4
    studies = tmp_path / "in"
    studies.mkdir()
    shutil.copy(tiny_dataset / "sub-002" / "sub-002_pet_drf20.nii.gz", studies / "study.nii.gz")
    settings = {
        "bundle_root": str(REPO_ROOT),
        "ckpt_path": str(models / "model.pt"),
        "provenance_file": str(models / "model_provenance.json"),
        "input_dir": str(studies),
        "progress": False,
        "precision": "fp32",
        "training_spacing": [4.0, 4.0, 4.0],
        "network_def#base_features": 4,
    }

    def infer(output: str, **extra: Any) -> None:  # the inference config, in-process (as `monai.bundle run` runs it)
        from monai.bundle import ConfigWorkflow

        config = str(REPO_ROOT / "configs" / "inference.json")
        overrides = {**settings, "output_dir": str(tmp_path / output), **extra}
        workflow = ConfigWorkflow(config_file=config, workflow_type=None, logging_file=False, **overrides)
        workflow.initialize()
        workflow.run()

    fit = load_script("fit_noise_estimator")
    estimator = models / "noise_estimator.pt"
    fit_args = ["--datalist", str(train / "datalist.json"), "--drf", "4", "20", "200", "--held-out", "1"]
    assert fit.main([*fit_args, "--epochs", "1", "--samples-per-epoch", "8", "--out", str(estimator)]) == 0
    with pytest.raises(SystemExit) as refused:
        fit.main([*fit_args, "--out", str(estimator)])
    assert refused.value.code == 2 and "already exists" in capsys.readouterr().err
    settings["noise_estimator_record"] = str(models / "noise_estimator.json")
    for name, extra in (("given", {"drf": 20}), ("estimated", {"drf": "auto"}), ("default", {})):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="bundle"):
            infer(name, **extra)
        assert (tmp_path / name / "study_denoised.nii.gz").is_file()
        assert ("(drf setting)" if name == "given" else "(read from the image)") in caplog.text
        record = json.loads((tmp_path / name / "study_denoised.json").read_text())
        assert record["made_by"]["dose_used"]["source"] == ("given" if name == "given" else "image"), record
    assert "setting drf" in user_error_line(lambda: infer("bad", drf=0.5))
    settings["noise_estimator_record"] = str(tmp_path / "none.json")  # no estimator: a DRF is needed
    assert "setting drf" in user_error_line(lambda: infer("bad"))
    with caplog.at_level(logging.WARNING, logger="bundle"):
        infer("legacy", drf="auto")  # bundle 0.2's recorded estimate, asked for and named unreliable
    assert "(estimated from the image; unreliable" in caplog.text

    # the image-coded profile: trained on the codes this estimator reads, evaluated and run with no DRF at all
    coded_run = tmp_path / "image_coded"
    coded = dict(overrides, output_dir=str(coded_run), loss_name="l1")
    coded["noise_estimator_record"] = str(models / "noise_estimator.json")
    files = ["configs/train.json", "configs/profiles/generalist.json", "configs/profiles/image_coded.json"]
    proc = run_bundle("training", files, coded)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recorded = json.loads((coded_run / "checkpoints" / "manifest.json").read_text())["settings"]
    assert recorded["dose_code_source"] == "image"
    assert recorded["noise_estimator_sha256"] == file_sha256(models / "noise_estimator.json")
    estimator = NoiseEstimator.load(models / "noise_estimator.json")
    item = {"image_drf4": torch.as_tensor(load_ras_volume(train / "sub-001" / "sub-001_pet_drf4.nii.gz"))[None]}
    item["image_drf4_scale"], item["label"] = 1.0, item["image_drf4"].clone()
    item = ImageCodeDrfd(["image_drf4"], models / "noise_estimator.json", top=200.0)(item)
    expected = min(estimator.code_drf(item["image_drf4"][0].numpy())[0], 200.0)
    assert item["image_drf4_code_drf"] == pytest.approx(expected)
    drawn = RandDoseLeveld([4])(item)  # the dose channel is given what the image reads, the label is kept
    assert (
        drawn["drf"] == pytest.approx(expected) and drawn["labelled_drf"] == 4.0 and "image_drf4_code_drf" not in drawn
    )
    reads = TrainedDenoiser(coded_run / "checkpoints", precision="fp32")
    assert reads.image_coded and reads.reads_drf_from_image and recorded["image_code_cap"] == "200"
    assert reads.denoiser.dose_input.trained_range == (4.0, 200.0)  # codes up to the cap the run was trained with
    assert reads(volume, None).shape == load_ras_volume(volume).shape
    from bundle.generalist.detail_gain import fit_detail_drf

    given = []  # the dose codes the detail-gain fit hands the run: none, as users run it
    real_call = TrainedDenoiser.__call__
    monkeypatch.setattr(
        TrainedDenoiser, "__call__", lambda self, *a, **k: given.append(a[1]) or real_call(self, *a, **k)
    )
    fit = fit_detail_drf(str(coded_run / "checkpoints"), str(tiny_dataset / "datalist.json"), [20.0], subjects=1)
    monkeypatch.undo()
    assert given == [None, None] and fit["dose_code"] == "read from each image"
    import shlex

    again = load_script("fit_detail_gain").build_parser().parse_args(shlex.split(fit["command"])[2:])
    assert (again.weights, again.subjects, again.drf, again.record) == (
        str(coded_run / "checkpoints"),
        "1",
        ["20"],
        True,
    )
    args = ["--run", f"conditioned={run / 'checkpoints'}", f"image-coded={coded_run / 'checkpoints'}"]
    args += ["--paper-datalist", str(tiny_dataset / "datalist.json"), "--tuning-datalist", ""]
    args += ["--new-anatomy-datalist", "", "--new-scanners-datalist", "", "--new-scanners-native-datalist", ""]
    args += ["--second-simulator-datalist", "", "--noise-estimator", str(models / "noise_estimator.json")]
    assert evaluate.main([*args, "--drf", "20", "--out", str(tmp_path / "coded"), "--no-progress"]) == 0
    methods = {r["method"] for r in json.loads((tmp_path / "coded" / "results.json").read_text())["records"]}
    assert {"image-coded", "conditioned", "conditioned, image code"} <= methods
    assert "Given no DRF" in (tmp_path / "coded" / "README.md").read_text()
    (models / "noise_estimator.json").write_text((models / "noise_estimator.json").read_text() + " ")
    with pytest.raises(InputDataError, match="not the noise estimator record the run was trained with"):
        TrainedDenoiser(coded_run / "checkpoints")


@pytest.mark.parametrize("loss", ["l1", "lesion-l1", "uptake-l1-suv"])
def test_lesion_rich_profile_trains_the_generalist_on_the_lesion_rich_cohort_into_its_own_folder(loss, tmp_path):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    files = ["configs/train.json", "configs/profiles/generalist.json", "configs/profiles/lesion_rich.json"]
    parser.read_config([str(REPO_ROOT / f) for f in files])
    parser.update({"bundle_root": str(tmp_path), "loss_name": loss})
    assert parser.get_parsed_content("output_dir") == str(tmp_path / "runs" / "generalist" / f"lesion-rich-{loss}")
    assert parser.get_parsed_content("dataset_dir") == str(tmp_path / "data" / "cohorts" / "generalist_train_lesions")
    assert "'generalist-train-lesions'" in parser["datalist_file"]  # simulated on a fresh clone, never evaluated here
    assert parser.get_parsed_content("lesion_weighted") == (loss == "lesion-l1")
    assert parser.get_parsed_content("lesion_map_in_label") == (loss != "l1")
    assert parser.get_parsed_content("tracking#run_name") == f"lesion-rich-{loss}"


@pytest.mark.parametrize("paper", ["", "missing/datalist.json"])
def test_evaluation_refuses_a_report_without_the_paper_subjects_before_any_work(paper, tmp_path, capsys):
    evaluate = load_script("evaluate_generalist")
    args = ["--run", "shipped=models/model.pt", "--paper-datalist", paper, "--out", str(tmp_path / "report")]
    with pytest.raises(SystemExit) as info:
        evaluate.main([*args, "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1, err
    assert err[0].startswith("error: ") and "setting paper-datalist:" in err[0] and "reference set" in err[0]
    assert not (tmp_path / "report" / "results.json").exists()
