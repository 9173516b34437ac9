"""MR that looks like MR (issue 33): Rician noise against scipy's Rice distribution, the rigid misregistration against
its own drawn transform and ITK's registration, the FLAIR contrast, MR-only lesions, and the MR cohort writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import load_script
from scipy import ndimage, stats
from scipy.spatial.transform import Rotation

from bundle.data import lesion_kinds, load_datalist
from bundle.deploy.mr_alignment import rigid_misalignment
from bundle.errors import ConfigValueError, OutputExistsError
from bundle.io import load_ras_volume
from bundle.simulation.mr_cohort import simulate_mr_cohort, validated_ranges
from bundle.simulation.mr_imaging import (
    FLAIR_LEVELS,
    MR_RANGES,
    MR_SCALE,
    ideal_flair,
    misregister,
    rician,
    rigid_displacement_rms_mm,
    simulate_mr,
)

VOXEL = (4.0, 4.0, 4.0)  # the tiny preset's


def acquire(subject: dict, seed: int, ranges: dict):
    """`simulate_mr` of the fixture's subject with its own generator."""
    return simulate_mr(
        subject["t1"],
        subject["tissue"],
        subject["mask"],
        subject["lesion"],
        subject["kinds"],
        VOXEL,
        np.random.default_rng(seed),
        ranges,
    )


@pytest.fixture(scope="module")
def subject(tiny_dataset) -> dict:
    item = load_datalist(tiny_dataset / "datalist.json")[1]  # its lesion has a rim and a core
    out = {key: load_ras_volume(item[key]) for key in ("label", "t1", "tissue", "mask", "lesion")}
    out["tissue"], out["lesion"] = out["tissue"].astype(np.uint8), out["lesion"].astype(np.int32)
    out["kinds"] = lesion_kinds(tiny_dataset / "datalist.json")[item["subject"]]
    return out


def test_rician_noise_follows_scipys_rice_distribution():
    rng = np.random.default_rng(0)
    for signal, sigma in ((3.0, 1.0), (0.0, 2.0), (20.0, 5.0)):
        samples = rician(np.full(100_000, signal, dtype=np.float32), sigma, rng)
        assert stats.kstest(samples, stats.rice(signal / sigma, scale=sigma).cdf).pvalue > 0.001, (signal, sigma)
    background = rician(np.zeros(100_000, dtype=np.float32), 1.0, rng)  # Rayleigh: mean sigma sqrt(pi / 2)
    assert background.mean() == pytest.approx(np.sqrt(np.pi / 2), rel=0.01)


def test_misregistration_moves_a_point_to_r_x_plus_t():
    shape, voxel = (41, 41, 21), (2.0, 2.0, 2.0)
    point_voxel = np.array([28.0, 14.0, 12.0])
    volume = np.zeros(shape, dtype=np.float32)
    volume[tuple(point_voxel.astype(int))] = 1.0
    volume = ndimage.gaussian_filter(volume, 1.0)
    translation, rotation = np.array([3.0, -2.0, 1.0]), np.array([0.0, 0.0, 10.0])
    moved = misregister(volume, voxel, translation, rotation)
    centre = (np.asarray(shape) - 1) / 2.0
    point_mm = (point_voxel - centre) * np.asarray(voxel)
    expected_mm = Rotation.from_rotvec(rotation, degrees=True).as_matrix() @ point_mm + translation
    found_mm = (np.asarray(ndimage.center_of_mass(moved)) - centre) * np.asarray(voxel)
    assert np.allclose(found_mm, expected_mm, atol=0.3), (found_mm, expected_mm)
    region = np.ones(shape, dtype=bool)
    assert rigid_displacement_rms_mm(region, voxel, translation, (0.0, 0.0, 0.0)) == pytest.approx(
        float(np.linalg.norm(translation))
    )


def test_itk_reads_the_drawn_misregistration_of_an_acquired_mr(subject):
    fixed_motion = dict(MR_RANGES, shift_mm=(3.0, 3.0), rotation_deg=(2.0, 2.0))
    mr = acquire(subject, 1, fixed_motion)
    read = rigid_misalignment(subject["label"], mr.t1, VOXEL)
    drawn = mr.record["misregistration_rms_mm"]
    assert drawn > 3.0 and read.rms_mm == pytest.approx(drawn, abs=1.0), (read, drawn)
    still = acquire(subject, 1, dict(MR_RANGES, shift_mm=(0.0, 0.0), rotation_deg=(0.0, 0.0)))
    assert still.record["misregistration_rms_mm"] == 0.0
    assert rigid_misalignment(subject["label"], still.t1, VOXEL).rms_mm < 1.0  # noise, bias and contrast: still aligned


def test_flair_contrast_and_lesions_with_and_without_an_mr_signature(subject):
    lesion = subject["lesion"].copy()
    kinds = dict(subject["kinds"])
    brain = subject["mask"] > 0
    wm = subject["tissue"] == 2
    free = np.argwhere(brain & (lesion == 0) & wm)
    pet_only_label = int(lesion.max()) + 1
    lesion[tuple(free[len(free) // 2])] = pet_only_label  # a PET-only focus: no MR signature
    kinds[str(pet_only_label)] = "pet_only"
    flair = ideal_flair(subject["t1"], subject["tissue"], brain, lesion, kinds, VOXEL, gm_to_wm=1.25) / MR_SCALE
    level = {name: float(np.median(flair[subject["tissue"] == label])) for name, label in (("gm", 1), ("wm", 2))}
    level["csf"] = float(np.min(flair[(subject["tissue"] == 3) & brain]))
    assert level["csf"] < level["wm"] < level["gm"], level
    rim = lesion == int(next(k for k, v in kinds.items() if v == "enhancing_rim"))
    assert np.allclose(flair[rim], FLAIR_LEVELS["enhancing_rim"])
    oedema = np.isclose(flair, FLAIR_LEVELS["oedema"]) & (lesion == 0)
    assert oedema.sum() > 0 and level["gm"] < FLAIR_LEVELS["oedema"]
    assert 0.9 < flair[lesion == pet_only_label][0] < 1.4  # tissue's level, not a lesion's


def test_mr_only_lesions_are_labelled_and_visible_only_on_mr(subject):
    quiet = dict(MR_RANGES, t1_snr=(1e6, 1e6), flair_snr=(1e6, 1e6), bias_field_sd=(0.0, 0.0), t1_gamma=(1.0, 1.0))
    quiet.update(shift_mm=(0.0, 0.0), rotation_deg=(0.0, 0.0), mr_only_lesions=(2.0, 2.0))
    mr = acquire(subject, 2, quiet)
    added = mr.record["mr_only_lesions"]
    assert [x["kind"] for x in added] == ["mr_only", "mr_only"]
    assert np.array_equal(mr.lesion_mask[subject["lesion"] > 0], subject["lesion"][subject["lesion"] > 0])
    wm_t1 = float(np.median(mr.t1[subject["tissue"] == 2]))
    wm_flair = float(np.median(mr.flair[subject["tissue"] == 2]))
    for x in added:
        region = mr.lesion_mask == x["label"]
        assert region.sum() == x["voxels"] > 0 and mr.lesion_kinds[str(x["label"])] == "mr_only"
        assert np.median(mr.t1[region]) < 0.85 * wm_t1 and np.median(mr.flair[region]) > 1.4 * wm_flair
    again = acquire(subject, 2, quiet)
    assert np.array_equal(again.t1, mr.t1) and np.array_equal(again.flair, mr.flair)


def test_mr_cohort_keeps_the_pet_and_refuses_bad_settings(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "mr"
    path = simulate_mr_cohort(tiny_dataset / "datalist.json", out, seed=4)
    source = {x["subject"]: x for x in load_datalist(tiny_dataset / "datalist.json")}
    cohort = load_datalist(path)
    assert len(cohort) == len(source)
    for item in cohort:
        before = source[item["subject"]]
        for key in ("image", "label", "mask", "truth", "image_drf20"):
            assert Path(item[key]).resolve() == Path(before[key]).resolve(), key
        assert item["t1"] != before["t1"] and "flair" in item
    kinds = lesion_kinds(path)
    assert all("mr_only" in k.values() for k in kinds.values())
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["subjects"]) == set(source) and manifest["settings"]["seed"] == 4
    with pytest.raises(OutputExistsError, match="datalist.json"):
        simulate_mr_cohort(tiny_dataset / "datalist.json", out, seed=4)
    with pytest.raises(ConfigValueError, match="setting shift_mm"):
        validated_ranges({"shift_mm": (2.0, 1.0)})
    with pytest.raises(ConfigValueError, match="setting speed"):
        validated_ranges({"speed": (1.0, 2.0)})
    with pytest.raises(SystemExit) as refused:
        load_script("simulate_mr").main(["--datalist", str(tmp_path / "none.json"), "--out", str(tmp_path / "x")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert refused.value.code != 0 and len(err) == 1 and "none.json: file not found" in err[0]


def test_an_ensured_mr_cohort_draws_its_mr_only_lesions_in_range_and_refuses_other_ranges(tiny_dataset, tmp_path):
    from bundle.errors import InputDataError
    from bundle.simulation import ensure_mr_cohort

    out = tmp_path / "many"
    path = ensure_mr_cohort(out, tiny_dataset / "datalist.json", 3, {"mr_only_lesions": (3, 4)})
    drawn = json.loads((out / "manifest.json").read_text())["subjects"]
    assert all(record["draw"]["mr_only_lesions"] in (3, 4) for record in drawn.values())
    for subject, kinds in lesion_kinds(path).items():  # each drawn lesion placed and labelled
        assert sum(kind == "mr_only" for kind in kinds.values()) == drawn[subject]["draw"]["mr_only_lesions"]
    assert ensure_mr_cohort(out, tiny_dataset / "datalist.json", 3, {"mr_only_lesions": (3, 4)}) == path  # reused
    with pytest.raises(InputDataError, match=r"other mr_only_lesions ranges is there \(mr_only_lesions \[3.0, 4.0\]\)"):
        ensure_mr_cohort(out, tiny_dataset / "datalist.json", 3)


def test_lesion_contrast_reads_mr_only_lesions_bright_on_flair_and_dark_on_t1(tiny_dataset, tmp_path):
    from bundle.errors import InputDataError
    from bundle.generalist.mr_lesion_contrast import mr_contrast_by_lesion_kind

    path = simulate_mr_cohort(tiny_dataset / "datalist.json", tmp_path / "mr", seed=4)
    rows = {(r["kind"], r["channel"]): r for r in mr_contrast_by_lesion_kind(path)}
    assert rows[("mr_only", "flair")]["mean"] > 1.2 and rows[("mr_only", "t1")]["mean"] < 0.9
    item = load_datalist(path)[0]  # one lesion read directly
    lesions, tissue = load_ras_volume(item["lesion"]).astype(int), load_ras_volume(item["tissue"]).astype(int)
    label, kind = next(iter(lesion_kinds(path)[item["subject"]].items()))
    flair = load_ras_volume(item["flair"])
    direct = flair[lesions == int(label)].mean() / np.median(flair[(tissue == 2) & (lesions == 0)])
    assert rows[(kind, "flair")]["min"] <= direct <= rows[(kind, "flair")]["max"]
    with pytest.raises(InputDataError, match="has no \\['flair'\\]"):
        mr_contrast_by_lesion_kind(tiny_dataset / "datalist.json")
    out = tmp_path / "contrast"
    assert load_script("mr_lesion_contrast").main(["--datalist", str(path), "--out", str(out)]) == 0
    assert json.loads((out / "contrast.json").read_text())["rows"] == list(rows.values())
    assert "python scripts/mr_lesion_contrast.py --datalist" in (out / "README.md").read_text()
