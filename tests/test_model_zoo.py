"""Model-zoo conformance: the metadata validates against the official schema, the network matches its declared
input and output, and shipping a cross-validation fold fills `eval_metrics` from the folds' results."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import REPO_ROOT

import bundle
from bundle.errors import OutputExistsError
from bundle.release import ship_fold_checkpoint

SCHEMA = REPO_ROOT / "tests" / "data" / "meta_schema_20240725.json"
META = REPO_ROOT / "configs" / "metadata.json"


def _bundle_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monai.bundle", *args], cwd=REPO_ROOT, capture_output=True, text=True)


def test_shipped_metadata_validates_against_the_official_schema_offline():
    proc = _bundle_cli("verify_metadata", "--meta_file", str(META), "--filepath", str(SCHEMA))
    assert proc.returncode == 0 and "verified with no error" in proc.stdout + proc.stderr, proc.stderr[-2000:]
    meta = json.loads(META.read_text())
    assert meta["version"] in meta["changelog"] and meta["version"] == bundle.__version__
    assert all(
        isinstance(v, (int, float)) for v in meta["eval_metrics"].values()
    )  # numbers only, as the zoo reads them
    assert "placeholder" not in (meta["authors"] + meta["copyright"]).lower() and isinstance(
        meta["supported_apps"], dict
    )
    inputs, outputs = meta["network_data_format"]["inputs"]["image"], meta["network_data_format"]["outputs"]["pred"]
    conditioned = json.loads((REPO_ROOT / "models" / "model_provenance.json").read_text()).get("dose_conditioning")
    expected = (4 if conditioned else 3, 2, 1)  # the dose code is a fourth channel of a dose-conditioned model
    assert (inputs["num_channels"], len(inputs["spatial_shape"]), outputs["num_channels"]) == expected
    metrics = meta["eval_metrics"]
    if "paper_drf200_model_psnr" in metrics:  # the generalist model's test summary, at the paper's dose
        assert metrics["paper_drf200_model_psnr"] > metrics["paper_drf200_gaussian_psnr"]
    else:
        assert metrics["mean_network_psnr"] > metrics["mean_gaussian_psnr"]


def test_network_matches_its_declared_input_and_output():
    proc = _bundle_cli(
        "verify_net_in_out",
        "network_def",
        "--meta_file",
        str(META),
        "--config_file",
        str(REPO_ROOT / "configs" / "inference.json"),
    )
    assert proc.returncode == 0 and "verified with no error" in proc.stdout + proc.stderr, proc.stderr[-2000:]


def _fake_cross_validation(folder, psnrs):
    for fold, psnr in enumerate(psnrs):
        d = folder / f"fold{fold}"
        (d / "checkpoints").mkdir(parents=True)
        torch.save({"network": {"w": torch.full((2,), float(fold))}}, d / "checkpoints" / "best.pt")
        metrics = {
            "subject": f"sub-{fold + 1:03d}",
            "low_dose_psnr": psnr - 6.0,
            "network_psnr": psnr,
            "network_nrmse": 0.1,
            "network_ssim": 0.8,
            "fold": fold,
        }
        (d / "result.json").write_text(
            json.dumps({"fold": fold, "test_subject": metrics["subject"], "metrics": metrics})
        )
        (d / "config.json").write_text(json.dumps({"profile": "cpu-default", "dataset_dir": "data/x"}))


def test_release_ships_a_fold_and_writes_cross_validation_metrics(tmp_path):
    psnrs = [27.0, 28.0, 29.5]
    _fake_cross_validation(tmp_path / "cv", psnrs)
    meta = tmp_path / "metadata.json"
    shutil.copyfile(META, meta)
    record = ship_fold_checkpoint(tmp_path / "cv", 1, tmp_path / "models", meta, command="test")
    shipped = torch.load(tmp_path / "models" / "model.pt", weights_only=True)
    assert set(shipped) == {"w"} and torch.equal(shipped["w"], torch.ones(2))  # a plain state dict, as the zoo ships
    metrics = json.loads(meta.read_text())["eval_metrics"]
    assert metrics["mean_network_psnr"] == pytest.approx(np.mean(psnrs), abs=1e-4)
    assert metrics["sd_network_psnr"] == pytest.approx(np.std(psnrs, ddof=1), abs=1e-4)
    assert record["test_subject"] == "sub-002"
    provenance = json.loads((tmp_path / "models" / "model_provenance.json").read_text())
    assert provenance["fold"] == 1 and provenance["profile"] == "cpu-default" and len(provenance["sha256"]) == 64
    assert all(isinstance(v, (int, float)) for v in json.loads(meta.read_text())["eval_metrics"].values())
    assert _bundle_cli("verify_metadata", "--meta_file", str(meta), "--filepath", str(SCHEMA)).returncode == 0
    with pytest.raises(OutputExistsError):  # the shipped weights are never replaced silently
        ship_fold_checkpoint(tmp_path / "cv", 2, tmp_path / "models", meta)
