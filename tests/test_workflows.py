"""The bundle configs end to end on tiny data: training, evaluation and inference."""

from __future__ import annotations

import csv
import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from helpers import REPO_ROOT, run_bundle, run_bundle_in_process, tiny_overrides

TRAIN = str(REPO_ROOT / "configs" / "train.json")
EVALUATE = str(REPO_ROOT / "configs" / "evaluate.json")
INFERENCE = str(REPO_ROOT / "configs" / "inference.json")


@pytest.fixture(scope="module")
def trained(tiny_trained, tmp_path_factory):
    """A private copy of the session's tiny training run (evaluation writes into it)."""
    out = tmp_path_factory.mktemp("train") / "run"
    shutil.copytree(tiny_trained, out)
    return out


def test_one_epoch_writes_checkpoints_and_history(trained):
    ckpt = trained / "checkpoints"
    assert {p.name for p in ckpt.iterdir()} >= {"last.pt", "best.pt", "model.pt", "history.csv"}
    header, row = (ckpt / "history.csv").read_text().splitlines()[:2]
    assert header.split(",")[:3] == ["epoch", "lr", "train_loss"] and "val_psnr" in header
    assert row.startswith("1,")
    assert not list(trained.rglob(".*tmp*"))


def test_evaluate_config_writes_metrics_panel_and_prediction(trained, tiny_dataset):
    proc = run_bundle("evaluating", [TRAIN, EVALUATE], tiny_overrides(tiny_dataset, trained))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| sub-001 |" in proc.stdout and "gaussian_psnr" in proc.stdout
    pred = trained / "eval" / "predictions" / "sub-001_pet_drf200_denoised.nii.gz"
    ref = nib.load(tiny_dataset / "sub-001" / "sub-001_pet_full.nii.gz")
    img = nib.load(pred)
    assert img.shape == ref.shape
    np.testing.assert_allclose(img.affine, ref.affine, atol=1e-4)
    rows = (trained / "eval" / "metrics_per_subject.csv").read_text().splitlines()
    assert rows[0].startswith("subject,low_dose_nrmse") and rows[1].startswith("sub-001,")
    per_slice = (trained / "eval" / "metrics_per_slice.csv").read_text().splitlines()
    assert per_slice[0] == "subject,method,slice,nrmse,psnr,ssim" and len(per_slice) > 10
    assert (trained / "eval" / "panels" / "sub-001.png").stat().st_size > 1000
    # a second evaluation does not silently overwrite the results
    again = run_bundle("evaluating", [TRAIN, EVALUATE], tiny_overrides(tiny_dataset, trained))
    assert again.returncode != 0 and "already exist" in again.stderr


def _inference_overrides(trained, out_dir, **extra):
    base = {
        "bundle_root": str(REPO_ROOT),
        "ckpt_path": str(trained / "checkpoints" / "model.pt"),
        "output_dir": str(out_dir),
        "progress": False,
        "precision": "fp32",
        "training_spacing": [4.0, 4.0, 4.0],
    }
    base["network_def#base_features"] = 4
    base.update(extra)
    return base


def test_inference_keeps_shape_affine_and_units_and_is_scale_equivariant(trained, tiny_dataset, tmp_path):
    src = nib.load(tiny_dataset / "sub-002" / "sub-002_pet_drf200.nii.gz")
    data = src.get_fdata().astype(np.float32)
    inputs = tmp_path / "in"
    inputs.mkdir()
    nib.save(nib.Nifti1Image(data, src.affine), inputs / "study_a.nii.gz")
    nib.save(nib.Nifti1Image(data * 1000, src.affine), inputs / "study_b.nii.gz")
    proc = run_bundle_in_process([INFERENCE], _inference_overrides(trained, tmp_path / "out", input_dir=str(inputs)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    a = nib.load(tmp_path / "out" / "study_a_denoised.nii.gz")
    b = nib.load(tmp_path / "out" / "study_b_denoised.nii.gz")
    assert a.shape == src.shape
    np.testing.assert_allclose(a.affine, src.affine, atol=1e-4)
    assert abs(a.get_fdata().mean() / data.mean() - 1) < 0.2  # same units (Bq/mL), not normalised
    np.testing.assert_allclose(
        b.get_fdata(), 1000 * a.get_fdata(), rtol=1e-4, atol=1e-3 * float(np.abs(b.get_fdata()).max())
    )
    assert "2 denoised" in proc.stdout


def test_inference_resamples_other_voxel_sizes_and_back(trained, tiny_dataset, tmp_path):
    src = nib.load(tiny_dataset / "sub-003" / "sub-003_pet_drf200.nii.gz")
    data = src.get_fdata().astype(np.float32)
    aff = src.affine.copy()
    aff[:3, :3] = np.diag([5.0, 5.0, 4.0])  # not the training spacing
    inputs = tmp_path / "in"
    inputs.mkdir()
    nib.save(nib.Nifti1Image(data, aff), inputs / "coarse.nii.gz")
    proc = run_bundle_in_process([INFERENCE], _inference_overrides(trained, tmp_path / "out", input_dir=str(inputs)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = nib.load(tmp_path / "out" / "coarse_denoised.nii.gz")
    assert out.shape == data.shape
    np.testing.assert_allclose(out.affine, aff, atol=1e-4)
    assert np.isfinite(out.get_fdata()).all()


@pytest.fixture(scope="module")
def dose_chain_dataset(tmp_path_factory):
    """Three tiny subjects at DRF 20 and 200 with the lesion mix."""
    from bundle.simulation import SimulationConfig, simulate_dataset

    out = tmp_path_factory.mktemp("dose_chain")
    config = SimulationConfig(preset="tiny", slices=16, n_subjects=3, seed=11, drfs=(20.0, 200.0), lesions="mix")
    simulate_dataset(out, config.with_updates(device="cpu"), progress=False)
    return out


def test_evaluation_at_another_dose_writes_lesion_and_regional_metrics(trained, dose_chain_dataset, tmp_path):
    from monai.bundle import ConfigWorkflow

    overrides = tiny_overrides(
        dose_chain_dataset, tmp_path / "fold", eval_drf=20, ckpt_path=str(trained / "checkpoints" / "model.pt")
    )
    wf = ConfigWorkflow(config_file=[TRAIN, EVALUATE], workflow_type=None, logging_file=False, **overrides)
    wf.initialize()
    rows = wf.run()[-1]
    eval_dir = tmp_path / "fold" / "eval_drf20"
    assert (eval_dir / "predictions" / "sub-001_pet_drf20_denoised.nii.gz").is_file()  # the DRF-20 image was denoised
    row = rows[0]
    for method in ("low_dose", "gaussian", "network"):
        assert {f"{method}_interior_psnr", f"{method}_edge_psnr", f"{method}_white_matter_psnr"} <= set(row)
        assert f"{method}_hot_lesion_suv_mean_bias_pct" in row and np.isfinite(row[f"{method}_white_matter_cv"])
    lesions = list(csv.DictReader(open(eval_dir / "lesions_per_subject.csv")))
    assert list(lesions[0])[:7] == [
        "subject",
        "drf",
        "method",
        "lesion",
        "suv_mean_bias_pct",
        "suv_max_bias_pct",
        "suv_peak_bias_pct",
    ]
    manifest = json.loads((dose_chain_dataset / "manifest.json").read_text())
    described = {str(x["label"]): x["kind"] for x in manifest["subjects"]["sub-001"]["lesions"]}
    assert len(lesions) == 3 * len(described)  # 3 methods x every lesion
    assert all(row["kind"] == described[row["lesion"]] and row["drf"] == "20" for row in lesions)
    regions = (eval_dir / "regions_per_subject.csv").read_text().splitlines()
    assert regions[0].startswith("subject,drf,method,region,nrmse,psnr") and len(regions) == 1 + 3 * 4
    records = json.loads((eval_dir / "records.json").read_text())
    assert [(r["method"], r["drf"]) for r in records] == [(m, 20.0) for m in ("low_dose", "gaussian", "network")]


def test_evaluation_at_a_dose_the_datalist_lacks_is_refused_in_one_line(trained, tiny_dataset, tmp_path):
    from monai.bundle import ConfigWorkflow

    from bundle.errors import InputDataError

    overrides = tiny_overrides(
        tiny_dataset, tmp_path / "fold", eval_drf=50, ckpt_path=str(trained / "checkpoints" / "model.pt")
    )
    wf = ConfigWorkflow(config_file=[TRAIN, EVALUATE], workflow_type=None, logging_file=False, **overrides)
    wf.initialize()
    with pytest.raises(Exception) as info:
        wf.run()
    message = str(info.value) + str(info.value.__cause__)
    assert "eval_drf" in message and "image_drf50" in message
    assert isinstance(info.value, InputDataError) or isinstance(info.value.__cause__, InputDataError)


@pytest.mark.parametrize("bad", ["fractional", "negative", "other_grid"])
def test_evaluation_refuses_a_bad_lesion_map_by_name_before_writing_anything(
    trained, dose_chain_dataset, tmp_path, bad
):
    from monai.bundle import ConfigWorkflow

    from bundle.errors import InputDataError, root_cause

    datalist = json.loads((dose_chain_dataset / "datalist.json").read_text())
    item = datalist["training"][0]  # sub-001: the test subject of fold 0
    source = nib.load(dose_chain_dataset / item["lesion"])
    labels = np.asarray(source.dataobj).astype(np.float32)
    labels = {"fractional": labels * 0.5 + (labels > 0) * 0.25, "negative": labels - 1, "other_grid": labels[:-1]}[bad]
    lesion_file = tmp_path / f"lesions_{bad}.nii.gz"
    nib.save(nib.Nifti1Image(labels, source.affine), lesion_file)
    for entry in datalist["training"]:
        for key in [k for k in entry if k != "subject"]:
            entry[key] = str(dose_chain_dataset / entry[key])
    item["lesion"] = str(lesion_file)
    (tmp_path / "datalist.json").write_text(json.dumps(datalist))
    overrides = tiny_overrides(
        dose_chain_dataset,
        tmp_path / "fold",
        datalist_file=str(tmp_path / "datalist.json"),
        ckpt_path=str(trained / "checkpoints" / "model.pt"),
    )
    wf = ConfigWorkflow(config_file=[TRAIN, EVALUATE], workflow_type=None, logging_file=False, **overrides)
    wf.initialize()
    with pytest.raises(Exception) as info:
        wf.run()
    error = root_cause(info.value)
    assert isinstance(error, InputDataError) and str(lesion_file) in str(error) and "\n" not in str(error)
    assert not list((tmp_path / "fold").rglob("*.nii.gz")) and not list((tmp_path / "fold").rglob("*.csv"))
