"""The MR-guided generalist (issue 33): trained as a profile on a cohort with acquired MR, run through the shipped
inference path with its MR variant (companions found beside the study, refused without them), and evaluated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO_ROOT, load_script, run_bundle, run_bundle_in_process, tiny_overrides, user_error_line

from bundle.data import load_datalist
from bundle.errors import InputDataError
from bundle.generalist import TrainedDenoiser
from bundle.generalist.mr_gate import BRAIN, gate_by_lesion_kind, gate_volume
from bundle.io import load_ras_volume
from bundle.mlflow_tracking import default_tracking_uri
from bundle.simulation import simulate_mr_cohort
from bundle.simulation.mr_cohort import validated_ranges

PROFILE = ["configs/train.json", "configs/profiles/generalist.json", "configs/profiles/mr_guided.json"]
SMALL_MOTION = validated_ranges({"shift_mm": (0.0, 0.5), "rotation_deg": (0.0, 0.5)})
VARIANT = [str(REPO_ROOT / "configs" / "inference.json"), str(REPO_ROOT / "configs/variants/mr_guided_inference.json")]


@pytest.fixture(scope="module")
def mr_run(tiny_dataset, tmp_path_factory) -> dict[str, Path]:
    """An MR-guided run trained on the MR cohort of two tiny subjects (one validates); `datalist`: that of the others."""
    root = tmp_path_factory.mktemp("mr_guided")
    source = json.loads((tiny_dataset / "datalist.json").read_text())
    items = load_datalist(tiny_dataset / "datalist.json")  # absolute paths
    cohorts = {}
    for name, subset in (("train", items[:2]), ("test", items[2:])):
        (root / f"{name}.json").write_text(json.dumps(dict(source, training=subset)))
        # small motions: on 4 mm voxels and 16 slices the registration reads a drawn 2 mm as up to 4 mm (the limit)
        cohorts[name] = simulate_mr_cohort(root / f"{name}.json", root / f"{name}_mr", seed=5, ranges=SMALL_MOTION)
    overrides = tiny_overrides(
        root / "train_mr", root / "run", num_val_subjects=1, val_interval=1, train_drfs=[20, 200]
    )
    overrides.update({"datalist_file": str(cohorts["train"]), "test_datalists": [], "val_drfs": [20]})
    overrides["tracking#tracking_uri"] = default_tracking_uri(root)
    proc = run_bundle("training", PROFILE, overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"datalist": cohorts["test"], "other": cohorts["train"], "checkpoints": root / "run" / "checkpoints"}


def test_the_mr_guided_run_reads_its_mr_through_the_shipped_path(mr_run):
    settings = json.loads((mr_run["checkpoints"] / "manifest.json").read_text())["settings"]
    assert settings["extra_keys"] == "['t1', 'flair', 'dose']" and settings["mr_seed"] == "100"
    # another subject's T1 is far from this PET: the alignment check would refuse it, so its limit is raised here
    denoiser = TrainedDenoiser(mr_run["checkpoints"], precision="fp32", overrides={"mr_alignment_refuse_mm": 50.0})
    assert denoiser.mr_keys == ["t1", "flair"] and denoiser.denoiser.mr_keys == ["t1", "flair"]
    item = load_datalist(mr_run["datalist"])[0]
    first = denoiser(item["image"], 200.0, item)
    assert first.shape == load_ras_volume(item["image"]).shape
    assert np.array_equal(first, denoiser(item["image"], 200.0, item))
    other_mr = dict(item, t1=load_datalist(mr_run["other"])[0]["t1"])  # the MR steers the output
    assert not np.allclose(first, denoiser(item["image"], 200.0, other_mr))
    line = user_error_line(lambda: denoiser(item["image"], 200.0, {"t1": item["t1"]}))
    assert "needs its flair" in line and "sub-003_pet_drf200.nii.gz" in line


def test_the_mr_variant_finds_the_companions_and_refuses_a_study_without_them(mr_run, tmp_path):
    item = load_datalist(mr_run["datalist"])[0]
    inputs = tmp_path / "in"
    inputs.mkdir()
    for study in ("alpha", "beta"):  # beta has no FLAIR
        shutil.copy(item["image"], inputs / f"{study}.nii.gz")
        shutil.copy(item["t1"], inputs / f"{study}_t1.nii.gz")
    shutil.copy(item["flair"], inputs / "alpha_flair.nii.gz")
    overrides = {
        "bundle_root": str(REPO_ROOT),
        "ckpt_path": str(mr_run["checkpoints"] / "best.pt"),
        "network_def#base_features": 4,
        "training_spacing": [4.0, 4.0, 4.0],
        "dose_conditioning": True,
        "drf": 200,
        "trained_drf_range": [20.0, 200.0],
        "precision": "fp32",
        "progress": False,
        "write_dicom": False,
        "input_dir": str(inputs),
        "output_dir": str(tmp_path / "out"),
        "mr_alignment_refuse_mm": 10.0,
    }
    proc = run_bundle_in_process(VARIANT, overrides)
    assert proc.returncode != 0  # one study failed
    assert (tmp_path / "out" / "alpha_denoised.nii.gz").is_file()
    assert not (tmp_path / "out" / "beta_denoised.nii.gz").exists()
    assert "study beta: the MR-guided model needs its flair" in proc.stdout
    strict = dict(
        overrides, output_dir=str(tmp_path / "strict"), mr_alignment_warn_mm=0.01, mr_alignment_refuse_mm=0.02
    )
    proc = run_bundle_in_process(VARIANT, strict)
    assert "limit 0.02 mm, setting mr_alignment" in proc.stdout
    assert not (tmp_path / "strict" / "alpha_denoised.nii.gz").exists()


def test_the_mr_guided_run_is_evaluated_with_its_mr_and_the_mr_only_lesions(mr_run, tmp_path, capsys):
    evaluate = load_script("evaluate_generalist")
    runs = [f"mr-guided={mr_run['checkpoints']}", f"shipped={mr_run['checkpoints']}"]  # the table's plumbing: twice
    args = ["--run", *runs, "--paper-datalist", str(mr_run["datalist"])]
    args += ["--new-anatomy-datalist", "", "--new-scanners-datalist", "", "--new-scanners-native-datalist", ""]
    args += ["--second-simulator-datalist", "", "--drf", "200", "--baselines", "gaussian", "guided-t1"]
    args += ["--tuning-datalist", str(mr_run["other"]), "--tuning-subjects", "2"]  # the T1-guided filter: MR cohort
    assert evaluate.main([*args, "--out", str(tmp_path / "report"), "--no-progress"]) == 0
    records = json.loads((tmp_path / "report" / "results.json").read_text())["records"]
    assert {"mr-guided", "shipped", "low dose", "guided-t1"} <= {r["method"] for r in records}
    assert "mr_only" in json.dumps([r for r in records if r["method"] == "mr-guided"])
    assert load_script("mr_guided_table").main([str(tmp_path / "report" / "results.json")]) == 0
    table = capsys.readouterr().out
    assert "| paper | 200 |" in table and "+0.00 (+0.00 to +0.00)" in table  # the same network twice
    assert "MR-only (normal PET)" in table and "MR-visible hot" in table


def test_an_mr_run_is_not_fitted_a_detail_gain_on_a_cohort_without_its_mr(mr_run, tiny_dataset):
    evaluate = load_script("evaluate_generalist")
    no_flair = str(tiny_dataset / "datalist.json")  # the PET cohort: a phantom T1, no FLAIR
    line = user_error_line(lambda: evaluate._fit_missing_detail_gains({"mr": str(mr_run["checkpoints"])}, no_flair))
    assert "setting detail-tuning-datalist: run 'mr' reads each study's flair, which " in line


def test_the_t1_guided_filter_is_the_guided_filter_with_another_guide(mr_run):
    from bundle.baselines.guided import GuidedFilter, MRGuidedFilter
    from bundle.errors import ConfigValueError

    item = load_datalist(mr_run["datalist"])[0]
    pet, t1 = load_ras_volume(item["image"]), load_ras_volume(item["t1"])
    guided = MRGuidedFilter()
    assert np.allclose(guided(pet, (4.0,) * 3, 8.0, 1e-3, guide=pet), GuidedFilter()(pet, (4.0,) * 3, 8.0, 1e-3))
    with_t1 = guided(pet, (4.0,) * 3, 8.0, 1e-3, guide=t1)
    assert with_t1.shape == pet.shape and not np.allclose(with_t1, guided(pet, (4.0,) * 3, 8.0, 1e-3, guide=pet))
    with pytest.raises(ConfigValueError, match="baseline guided-t1: needs each subject's t1"):
        guided(pet, (4.0,) * 3)


def test_the_gated_profile_trains_on_every_lesion_of_the_mr_map_and_infers_through_its_gate(mr_run, tmp_path):
    from bundle.networks import GuideGate

    profile = [*PROFILE, "configs/profiles/mr_guided_gated.json"]
    datalist = mr_run["other"]
    overrides = tiny_overrides(
        datalist.parent, tmp_path / "run", num_val_subjects=1, val_interval=1, train_drfs=[20, 200]
    )
    overrides.update({"datalist_file": str(datalist), "test_datalists": [], "val_drfs": [20]})
    overrides["tracking#tracking_uri"] = default_tracking_uri(tmp_path)
    proc = run_bundle("training", profile, overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    settings = json.loads((tmp_path / "run" / "checkpoints" / "manifest.json").read_text())["settings"]
    assert settings["guide_channels"] == "2" and settings["loss_name"] == "uptake-lesion-l1"
    denoiser = TrainedDenoiser(tmp_path / "run" / "checkpoints", precision="fp32")
    network = denoiser.denoiser.network
    assert isinstance(network.guide_gate, GuideGate) and network.guide_gate.guide_channels == 2
    item = load_datalist(mr_run["datalist"])[0]
    assert denoiser(item["image"], 200.0, item).shape == load_ras_volume(item["image"]).shape

    # the gate read by lesion kind through the same path; a run without a gate is refused in one line
    script = load_script("mr_gate_reading")
    out = tmp_path / "gate"
    args = ["--datalist", str(mr_run["datalist"]), "--drf", "200", "--subjects", "1", "--out", str(out)]
    assert script.main(["--run", str(tmp_path / "run" / "checkpoints"), *args]) == 0
    rows = json.loads((out / "gate.json").read_text())["rows"]
    assert {(r["region"], r["channel"]) for r in rows} >= {(BRAIN, "t1"), (BRAIN, "flair"), ("mr_only", "flair")}
    assert all(0.0 < r["min"] <= r["mean"] <= r["max"] < 1.0 for r in rows)
    assert "python scripts/mr_gate_reading.py --run" in (out / "README.md").read_text()
    line = user_error_line(lambda: gate_by_lesion_kind(mr_run["checkpoints"], mr_run["datalist"], [200.0], 1))
    assert "not a gated MR-guided run" in line


def test_the_gate_volume_is_cropped_as_the_network_crops_its_padding():
    slices = [torch.arange(2 * 2 * 8 * 8, dtype=torch.float32).reshape(2, 2, 8, 8) + 1000 * z for z in range(2)]
    volume = gate_volume(slices, (5, 6, 4))
    assert volume.shape == (2, 5, 6, 4)
    assert volume[1, 0, 0, 3] == float(slices[1][1, 1, 1, 1])  # pads 3 / 2 rows: top 1, left 1
    with pytest.raises(InputDataError, match="4 gated slices for a study of 5 slices"):
        gate_volume(slices, (5, 6, 5))
