"""Deployment: DICOM in and out, batch fault isolation, exports, the model-zoo archive, multi-GPU (gloo)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from helpers import REPO_ROOT, run_bundle_in_process, tiny_overrides
from monai.transforms import LoadImage

from bundle.deploy.export import check_exports, export_onnx, export_torchscript, load_inference_network
from bundle.deploy.synthetic_dicom import write_pet_series
from bundle.packaging import build_archive, extract_archive, verify_archive

TRAIN = str(REPO_ROOT / "configs" / "train.json")
INFERENCE = str(REPO_ROOT / "configs" / "inference.json")


@pytest.fixture(scope="module")
def tiny_model(tiny_trained):
    """Weights of the session's 4-wide network trained for one epoch on the tiny dataset."""
    return tiny_trained / "checkpoints" / "model.pt"


def _infer(model, input_dir, output_dir, **extra):
    """The inference config on the tiny network, in-process (see `helpers.run_bundle_in_process`)."""
    overrides = {
        "bundle_root": str(REPO_ROOT),
        "ckpt_path": str(model),
        "input_dir": str(input_dir),
        "output_dir": str(output_dir),
        "progress": False,
        "precision": "fp32",
        "training_spacing": [4.0, 4.0, 4.0],
        "network_def#base_features": 4,
    }
    overrides.update(extra)
    return run_bundle_in_process([INFERENCE], overrides)


@pytest.fixture(scope="module")
def dicom_case(tiny_dataset, tiny_model, tmp_path_factory):
    """A synthetic PET DICOM series and a NIfTI study, denoised in one inference run."""
    root = tmp_path_factory.mktemp("dicom")
    volume = nib.load(tiny_dataset / "sub-002" / "sub-002_pet_drf200.nii.gz").get_fdata().astype(np.float32)
    inputs = root / "in"
    write_pet_series(volume, inputs / "patient_pet", spacing_mm=(4.0, 4.0, 4.0), origin_lps=(-126.0, -126.0, -30.0))
    shutil.copy(tiny_dataset / "sub-003" / "sub-003_pet_drf200.nii.gz", inputs / "nifti_study.nii.gz")
    proc = _infer(tiny_model, inputs, root / "out")
    return root, proc


def test_dicom_series_is_denoised_to_nifti_and_dicom(dicom_case):
    root, proc = dicom_case
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 denoised, 0 skipped, 0 failed" in proc.stdout
    assert (root / "out" / "patient_pet_denoised.nii.gz").is_file()
    assert (root / "out" / "nifti_study_denoised.nii.gz").is_file()
    assert len(list((root / "out" / "patient_pet_denoised_dicom").glob("*.dcm"))) == 16


def test_dicom_output_reads_back_with_itk_with_the_same_values_and_geometry(dicom_case):
    root, _ = dicom_case
    loader = LoadImage(reader="ITKReader", image_only=True)
    source = loader(str(root / "in" / "patient_pet"))
    written = loader(str(root / "out" / "patient_pet_denoised_dicom"))
    prediction = LoadImage(image_only=True)(str(root / "out" / "patient_pet_denoised.nii.gz"))
    assert written.shape == source.shape == prediction.shape
    np.testing.assert_allclose(np.asarray(written.affine), np.asarray(source.affine), atol=1e-3)
    np.testing.assert_allclose(np.asarray(prediction.affine), np.asarray(source.affine), atol=1e-3)
    w, p = np.asarray(written), np.asarray(prediction)
    per_slice_step = np.abs(p).reshape(-1, p.shape[-1]).max(0) / 32767  # the rescale slope of each slice
    # half a quantisation step, plus float32 rounding of both values (the reader computes stored x slope in float32;
    # near 75,000 one float32 step is 0.008), whatever the CPU kind or precision path
    rounding = 4 * np.finfo(np.float32).eps * np.maximum(np.abs(p), np.abs(w))
    assert np.all(np.abs(w - p) <= per_slice_step[None, None, :] * 0.5 + rounding)


def test_dicom_output_tags(dicom_case):
    root, _ = dicom_case
    src = [pydicom.dcmread(f) for f in sorted((root / "in" / "patient_pet").glob("*.dcm"))]
    out = [pydicom.dcmread(f) for f in sorted((root / "out" / "patient_pet_denoised_dicom").glob("*.dcm"))]
    for tag in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "StudyInstanceUID",
        "FrameOfReferenceUID",
        "AccessionNumber",
    ):
        assert {str(d.get(tag)) for d in out} == {str(src[0].get(tag))}
    assert len({d.SeriesInstanceUID for d in out}) == 1 and out[0].SeriesInstanceUID != src[0].SeriesInstanceUID
    sops = {d.SOPInstanceUID for d in out}
    assert len(sops) == len(out) and not sops & {d.SOPInstanceUID for d in src}
    assert all("DENOISED" in d.SeriesDescription and "DERIVED" in d.ImageType for d in out)
    assert all("Denoised" in d.DerivationDescription for d in out)
    assert {d.SourceImageSequence[0].ReferencedSOPInstanceUID for d in out} == {d.SOPInstanceUID for d in src}
    assert all(d.Units == "BQML" and d.Modality == "PT" for d in out)


def test_bad_studies_are_reported_by_name_and_skipped(tiny_dataset, tiny_model, tmp_path):
    volume = nib.load(tiny_dataset / "sub-002" / "sub-002_pet_drf200.nii.gz").get_fdata().astype(np.float32)
    inputs = tmp_path / "in"
    write_pet_series(volume[..., :4], inputs / "ct_series", modality="CT", spacing_mm=(4.0, 4.0, 4.0))
    mixed = inputs / "mixed_series"
    write_pet_series(volume[..., :4], mixed, spacing_mm=(4.0, 4.0, 4.0))
    write_pet_series(volume[..., 4:8], tmp_path / "other", spacing_mm=(4.0, 4.0, 4.0))
    for i, f in enumerate(sorted((tmp_path / "other").glob("*.dcm"))):
        shutil.copy(f, mixed / f"other{i}.dcm")
    (inputs / "corrupt.nii.gz").write_bytes(b"this is not an image")
    nib.save(nib.Nifti1Image(volume[..., 0], np.eye(4)), inputs / "flat_2d.nii.gz")
    shutil.copy(tiny_dataset / "sub-004" / "sub-004_pet_drf200.nii.gz", inputs / "good.nii.gz")
    proc = _infer(tiny_model, inputs, tmp_path / "out")
    assert proc.returncode != 0
    assert "1 denoised, 0 skipped, 4 failed" in proc.stdout
    lines = {line.split()[1]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert "modality CT" in lines["ct_series"]
    assert "2 DICOM series" in lines["mixed_series"]
    assert "corrupt.nii.gz" in lines["corrupt"] or "corrupt" in lines["corrupt"]
    assert "2D" in lines["flat_2d"]
    assert (tmp_path / "out" / "good_denoised.nii.gz").is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good_denoised.json", "good_denoised.nii.gz"]


def test_torchscript_and_onnx_exports_match_eager(tiny_model, tmp_path):
    net = load_inference_network(INFERENCE, str(tiny_model), {"network_def#base_features": 4})
    ts = export_torchscript(net, tmp_path / "model.ts", str(REPO_ROOT / "configs" / "metadata.json"), INFERENCE)
    onnx = export_onnx(net, tmp_path / "model.onnx", in_channels=3)
    diffs = check_exports(net, 3, ts, onnx)
    assert diffs["torchscript"] < 1e-5 and diffs["onnx"] < 1e-5, diffs
    with pytest.raises(Exception, match="already exists"):
        export_onnx(net, tmp_path / "model.onnx", in_channels=3)  # no silent overwrite


def test_inference_on_onnx_and_torchscript_backends_matches_torch(tiny_dataset, tiny_model, tmp_path):
    net = load_inference_network(INFERENCE, str(tiny_model), {"network_def#base_features": 4})
    export_onnx(net, tmp_path / "model.onnx", in_channels=3)
    export_torchscript(net, tmp_path / "model.ts")
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(tiny_dataset / "sub-001" / "sub-001_pet_drf200.nii.gz", inputs / "a.nii.gz")
    results = {}
    for backend in ("torch", "onnx", "torchscript"):
        proc = _infer(
            tiny_model,
            inputs,
            tmp_path / backend,
            backend=backend,
            onnx_path=str(tmp_path / "model.onnx"),
            torchscript_path=str(tmp_path / "model.ts"),
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        results[backend] = nib.load(tmp_path / backend / "a_denoised.nii.gz").get_fdata()
    span = results["torch"].max() - results["torch"].min()
    for backend in ("onnx", "torchscript"):
        assert np.abs(results[backend] - results["torch"]).max() / span < 1e-5


def test_monai_ckpt_export_writes_an_equivalent_torchscript(tiny_model, tmp_path):
    out = tmp_path / "model.ts"
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "ckpt_export",
        "network_def",
        "--filepath",
        str(out),
        "--ckpt_file",
        str(tiny_model),
        "--key_in_ckpt",
        "network",
        "--meta_file",
        str(REPO_ROOT / "configs" / "metadata.json"),
        "--config_file",
        INFERENCE,
        "--network_def#base_features",
        "4",
        "--ckpt_path",
        str(tiny_model),  # the network's form follows these weights (dose-blind), not the shipped generalist's
    ]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    net = load_inference_network(INFERENCE, str(tiny_model), {"network_def#base_features": 4})
    assert check_exports(net, 3, torchscript_path=out)["torchscript"] < 1e-5


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return build_archive(REPO_ROOT, tmp_path_factory.mktemp("dist"))


def test_archive_unpacks_outside_the_repo_and_runs_inference_and_load(archive, tiny_dataset, tmp_path):
    meta = json.loads((REPO_ROOT / "configs" / "metadata.json").read_text())
    assert archive.name == f"{meta['name']}_v{meta['version']}.zip"
    dest = tmp_path / "unpacked"
    dest.mkdir()
    root = extract_archive(archive, dest)
    assert {p.name for p in root.iterdir()} >= {"configs", "models", "docs", "bundle", "LICENSE", "checksums.sha256"}
    inputs = tmp_path / "in"
    inputs.mkdir()
    src = nib.load(tiny_dataset / "sub-001" / "sub-001_pet_drf200.nii.gz")
    nib.save(nib.Nifti1Image(src.get_fdata().astype(np.float32), src.affine), inputs / "study.nii.gz")
    env = dict(os.environ, PYTHONPATH=str(root))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "run",
            "--config_file",
            "configs/inference.json",
            "--input_dir",
            str(inputs),
            "--output_dir",
            str(tmp_path / "out"),
            "--progress",
            "False",
            "--drf",
            "200",  # the shipped generalist model is dose-conditioned: the studies' DRF
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert nib.load(tmp_path / "out" / "study_denoised.nii.gz").shape == src.shape
    code = (
        "import bundle, torch, monai.bundle as mb; "
        f"assert bundle.__file__.startswith({str(root)!r}), bundle.__file__; "
        f"net = mb.load(name={meta['name']!r}, bundle_dir={str(dest)!r}, workflow_type='inference', device='cpu'); "
        "out = net.eval()(torch.rand(1, 3, 64, 64)); print('LOADED', tuple(out.shape))"
    )
    load = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert load.returncode == 0, load.stderr[-2000:]
    assert "LOADED (1, 1, 64, 64)" in load.stdout


def test_archive_checksums_and_missing_weights_are_refused(archive, tmp_path):
    tampered = tmp_path / archive.name
    shutil.copy(archive, tampered)
    shutil.copy(str(archive) + ".sha256", str(tampered) + ".sha256")
    with zipfile.ZipFile(tampered, "a") as zf:
        zf.writestr("extra.txt", "x")
    with pytest.raises(Exception, match="sha256 does not match"):
        verify_archive(tampered)
    no_weights = tmp_path / "noweights.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(no_weights, "w") as dst:
        name = src.namelist()[0].split("/")[0]
        manifest = src.read(f"{name}/checksums.sha256").decode().splitlines()
        for item in src.namelist():
            if not item.endswith("models/model.pt") and not item.endswith("checksums.sha256"):
                dst.writestr(item, src.read(item))
        dst.writestr(
            f"{name}/checksums.sha256", "\n".join(l for l in manifest if not l.endswith("models/model.pt")) + "\n"
        )
    from bundle.io import file_sha256

    (tmp_path / "noweights.zip.sha256").write_text(f"{file_sha256(no_weights)}  noweights.zip\n")
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "package.py"), "--verify", str(no_weights)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and "missing its weights" in proc.stderr


def test_multi_gpu_config_trains_with_two_gloo_processes(tiny_dataset, tmp_path):
    overrides = tiny_overrides(tiny_dataset, tmp_path / "ddp")
    args = []
    for k, v in overrides.items():
        args += [f"--{k}", v if isinstance(v, str) else repr(v)]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--log-dir",
        str(tmp_path / "logs"),
        "--redirects",
        "3",
        "-m",
        "monai.bundle",
        "run",
        "training",
        "--config_file",
        repr([TRAIN, str(REPO_ROOT / "configs" / "multi_gpu_train.json")]),
        *args,
    ]
    proc = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, (proc.stderr + proc.stdout)[-3000:]
    logs = {p.parent.name: p.read_text() for p in (tmp_path / "logs").rglob("stdout.log")}
    logs.update({p.parent.name + "_err": p.read_text() for p in (tmp_path / "logs").rglob("stderr.log")})
    ranks_done = [name for name, text in logs.items() if "Epoch[1] Complete" in text]
    assert len(ranks_done) == 2, {k: v[-500:] for k, v in logs.items()}  # both processes trained
    ckpt = torch.load(tmp_path / "ddp" / "checkpoints" / "model.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in ckpt["network"])  # rank 0 saved the plain network
