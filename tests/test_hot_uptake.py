"""The hot-focus uptake restore (issue 31): each hot focus of the output is raised by the mean of what the network
removed there, at the end of the shipped inference path, and the setting is part of the run's identity."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from bundle.deploy.study_denoiser import inference_components
from bundle.errors import InputDataError
from bundle.generalist.detail_local import choose_rule
from bundle.transforms.hot_uptake import RestoreHotUptaked, hot_focus_mask, hot_uptake_setting, restore_hot_uptake


def _phantom(seed: int = 0):
    """A 40^3 'brain' (uptake 1, a hot sphere of 3 in it, Poisson-like noise) and a smoothed output that lowers the
    sphere as a denoiser does; (input, output, brain, sphere)."""
    rng = np.random.default_rng(seed)
    grid = np.indices((40, 40, 40)) - 19.5
    radius = np.sqrt((grid**2).sum(0))
    brain, sphere = radius < 17, np.sqrt(((grid - np.array([6, 0, 0])[:, None, None, None]) ** 2).sum(0)) < 3
    truth = brain * 1.0 + sphere * 2.0
    image = truth + rng.normal(0, 0.15, truth.shape) * np.sqrt(truth)
    return image, gaussian_filter(image, 1.5) * brain, brain, sphere


def test_the_restore_gives_each_hot_focus_its_counts_back_and_leaves_the_rest_alone():
    from scipy.ndimage import label

    image, output, brain, sphere = _phantom()
    restored = restore_hot_uptake(image, output, brain, threshold=1.5)
    hot = hot_focus_mask(output, brain, 1.5)
    assert hot[sphere].mean() > 0.9 and hot.sum() < 4 * sphere.sum()  # the focus, grown by a voxel, not the brain
    assert np.array_equal(restored[~hot], output[~hot])
    foci, count = label(hot)
    assert count >= 1
    for focus in range(1, count + 1):  # each focus holds the input's counts, with the output's texture
        inside = foci == focus
        assert restored[inside].mean() == pytest.approx(image[inside].mean(), rel=1e-9)
        np.testing.assert_allclose(np.diff(restored[inside]), np.diff(output[inside]), atol=1e-9)
    truth_mean = 3.0
    assert abs(restored[sphere].mean() - truth_mean) < abs(output[sphere].mean() - truth_mean) - 0.1
    # nothing removed, nothing given back
    assert np.array_equal(restore_hot_uptake(image, image, brain, 1.5), image)


def test_the_restore_uses_the_support_the_grid_step_handed_on_and_removes_both_helper_keys():
    import torch

    image, output, brain, _ = _phantom()
    item = {
        "pred": torch.from_numpy(output[None].astype(np.float32)),
        "native_image": torch.from_numpy(image[None].astype(np.float32)),
    }
    restore = RestoreHotUptaked(setting={"threshold": 1.5})
    handed = restore({**item, "native_image_support": brain})
    np.testing.assert_allclose(handed["pred"][0].numpy(), restore_hot_uptake(image, output, brain, 1.5), atol=1e-5)
    nowhere = restore({**item, "native_image_support": np.zeros_like(brain)})  # the support given is the one used
    assert nowhere["hot_focus_ml"] == 0.0 and np.array_equal(nowhere["pred"][0].numpy(), item["pred"][0].numpy())
    for out in (handed, nowhere, RestoreHotUptaked(setting=None)({**item, "native_image_support": brain})):
        assert "native_image" not in out and "native_image_support" not in out


@pytest.mark.parametrize("value", [{"threshold": 1.0}, {"threshold": "high"}, {"sigma_mm": 2.0}, "on"])
def test_a_bad_restore_setting_is_refused_in_one_line(value):
    with pytest.raises(InputDataError, match="setting hot_uptake_restore"):
        hot_uptake_setting(value)
    assert hot_uptake_setting(None) is None
    assert hot_uptake_setting({"threshold": 2, "_comment": "x"}) == {"threshold": 2.0}


def test_the_inference_path_restores_its_final_output_on_the_study_grid(tiny_dataset, tmp_path):
    """The shipped postprocessing with the setting gives `restore_hot_uptake` of its output without it, computed
    against the study as loaded (here off the 2 mm grid), and the rerun identity names the setting."""
    from bundle.deploy.study_identity import identity_differences, run_identity
    from bundle.metrics.image_quality import estimate_support_mask

    source = nib.load(tiny_dataset / "sub-001" / "sub-001_pet_drf200.nii.gz")
    data = np.asarray(source.get_fdata(dtype=np.float32))
    voxel = (2.3, 2.3, 2.78)
    path = tmp_path / "offgrid.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([*voxel, 1.0])), str(path))
    setting = {"threshold": 1.3}

    def run(restore):
        preprocessing, shipped = inference_components(
            {"device": "cpu", "precision": "fp32", "hot_uptake_restore": restore}
        )
        item = preprocessing({"image": str(path)})
        smoothed = gaussian_filter(item["image"][:1].numpy(), (0, 1.5, 1.5, 1.0))  # a denoiser's lowered foci
        item["pred"] = item["image"][:1].clone()
        item["pred"][:] = item["pred"].new_tensor(smoothed)
        item["dose_used"] = 200.0
        out = shipped.postprocessing(item)
        assert "native_image" not in out and "native_image_support" not in out
        return out["pred"][0].numpy().astype(np.float64), out.get("hot_focus_ml")

    (plain, no_focus), (restored, focus_ml) = run(None), run(setting)
    brain = estimate_support_mask(data)
    expected = restore_hot_uptake(data, plain, brain, **setting)
    assert no_focus is None
    hot = hot_focus_mask(plain, brain, setting["threshold"])
    assert focus_ml == pytest.approx(hot.sum() * np.prod(voxel) / 1000, rel=0.05) and focus_ml > 0
    assert not np.allclose(plain, restored)
    np.testing.assert_allclose(restored, expected, rtol=0, atol=1e-5 * data.max())
    without = run_identity("torch", {"torch": "models/model.pt"}, drf=20.0)
    with_restore = run_identity("torch", {"torch": "models/model.pt"}, drf=20.0, hot_uptake_restore=setting)
    assert [d.split(" ")[0] for d in identity_differences(without, with_restore)] == ["hot_uptake_restore"]
    assert identity_differences({k: v for k, v in without.items() if k != "hot_uptake_restore"}, without) == []


def test_the_rule_is_chosen_by_hot_suvmean_within_the_psnr_allowance():
    """The selection keeps rules within 0.05 dB of the shipped output at every DRF and takes the one with the
    smallest mean |hot SUVmean bias| at DRF 50-200; the shipped output when none is within."""

    def rows(rule, psnr_200, bias):
        return [
            {"subject": s, "drf": d, "rule": rule, "psnr": 30.0 - (psnr_200 if d == 200.0 else 0.0)}
            | {"hot_suv_mean_bias_pct": [bias], "hot_suv_max_bias_pct": [0.0]}
            for s in ("a", "b")
            for d in (2.0, 200.0)
        ]

    table = rows("shipped output", 0.0, -6.0) + rows("strong", 0.2, -1.0) + rows("mild", 0.04, -4.0)
    chosen = choose_rule(table, baseline="shipped output", lesion_key="hot_suv_mean_bias_pct")
    assert chosen == "mild"
    only_strong = [r for r in table if r["rule"] != "mild"]
    assert choose_rule(only_strong, baseline="shipped output", lesion_key="hot_suv_mean_bias_pct") == "shipped output"


def test_the_selection_script_writes_every_rule_and_its_choice(tiny_dataset, tiny_trained, tmp_path):
    """The script end to end on the tiny network: every threshold of the grid plus the shipped output for each study,
    the choice made on the fit set, and the report naming it."""
    from helpers import load_script

    from bundle.generalist.hot_uptake import GRID, SHIPPED

    script = load_script("hot_uptake_restore")
    datalist = str(tiny_dataset / "datalist.json")
    args = ["--fit-set", f"fit={datalist}", "--fit-subjects", "2", "--test-set", f"test={datalist}", "--drf", "200"]
    assert (
        script.main([*args, "--subjects", "2", "--weights", str(tiny_trained / "checkpoints"), "--out", str(tmp_path)])
        == 0
    )
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["rows"]["test"]
    assert len({r["rule"] for r in rows}) == len(GRID) + 1 and SHIPPED in {r["rule"] for r in rows}
    assert results["chosen"] in {r["rule"] for r in results["rows"]["fit"]}
    assert "chosen on the first 2 subjects of **fit**" in (tmp_path / "README.md").read_text()


def test_the_run_records_and_prints_the_volume_it_restored(tiny_dataset, tmp_path, capsys):
    """Through the bundle's inference command (the shipped weights) with the setting on: the study's record holds the
    setting and the volume of hot foci raised, and the run's summary prints it."""
    import shutil

    from helpers import REPO_ROOT
    from monai.bundle import run

    from bundle.deploy.study_finder import study_name

    source = tiny_dataset / "sub-001" / "sub-001_pet_drf200.nii.gz"
    (tmp_path / "in").mkdir()
    shutil.copy(source, tmp_path / "in" / source.name)
    run(
        config_file=str(REPO_ROOT / "configs" / "inference.json"),
        bundle_root=str(REPO_ROOT),
        dataset_dir=str(tmp_path / "in"),
        output_dir=str(tmp_path / "out"),
        drf=200,
        hot_uptake_restore="@hot_uptake_restore_setting",
        progress=False,
    )
    record = json.loads((tmp_path / "out" / f"{study_name(source)}_denoised.json").read_text())["made_by"]
    assert record["hot_uptake_restore"] == {"threshold": 1.4} and record["hot_focus_ml"] > 0
    assert f"hot foci given their counts back: {record['hot_focus_ml']:.2f} mL" in capsys.readouterr().out
