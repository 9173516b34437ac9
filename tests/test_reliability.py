"""Interruptions lose nothing, results are reproducible, writes are atomic, logs carry no patient tags."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import REPO_ROOT, cli_args, tiny_overrides

from bundle.errors import OutputExistsError
from bundle.io import atomic_path, write_json

TRAIN = str(REPO_ROOT / "configs" / "train.json")


def _train_cmd(dataset: Path, out: Path, epochs: int, tracking: str | None = None) -> list[str]:
    overrides = tiny_overrides(dataset, out, num_epochs=epochs, slices_per_volume=16)
    if tracking:
        overrides["tracking#tracking_uri"] = tracking
    return [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", TRAIN, *cli_args(overrides)]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["network"]


def test_sigkill_mid_epoch_then_rerun_reaches_the_uninterrupted_state(tiny_dataset, tmp_path):
    epochs = 4
    reference = subprocess.run(
        _train_cmd(tiny_dataset, tmp_path / "ref", epochs),
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert reference.returncode == 0, reference.stderr[-2000:]

    out = tmp_path / "killed"
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    cmd = _train_cmd(tiny_dataset, out, epochs, tracking=uri)
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = out / "checkpoints" / "history.csv"
    deadline = time.time() + 300
    while time.time() < deadline and not (history.is_file() and len(history.read_text().splitlines()) >= 3):
        time.sleep(0.01)  # wait until epoch 2 is complete and checkpointed
    time.sleep(0.05)  # now inside epoch 3 (a tiny epoch takes a fraction of a second on a fast CPU)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(history.read_text().splitlines()) < epochs + 1, "the kill came too late to interrupt training"
    assert not list(out.rglob(".*tmp*")) or all(p.stat().st_size >= 0 for p in out.rglob(".*tmp*"))
    resumed = subprocess.run(cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stderr + resumed.stdout

    ref_w, got_w = _weights(tmp_path / "ref" / "checkpoints" / "model.pt"), _weights(out / "checkpoints" / "model.pt")
    for key in ref_w:
        torch.testing.assert_close(got_w[key], ref_w[key], rtol=0, atol=1e-6)
    ref_hist = (tmp_path / "ref" / "checkpoints" / "history.csv").read_text().splitlines()
    assert history.read_text().splitlines() == ref_hist  # finished epochs neither lost nor duplicated
    client = mlflow.MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("uldpet").experiment_id])[0]
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert steps == list(range(1, epochs + 1))  # one entry per epoch in MLflow too


def test_rerunning_a_finished_training_changes_nothing_and_other_settings_are_refused(tiny_dataset, tmp_path):
    from monai.bundle import ConfigWorkflow

    out = tmp_path / "run"

    def train(**extra):
        wf = ConfigWorkflow(
            config_file=TRAIN, workflow_type=None, logging_file=False, **tiny_overrides(tiny_dataset, out, **extra)
        )
        wf.initialize()
        wf.run()

    train()
    before = (out / "checkpoints" / "last.pt").read_bytes()
    train()
    assert (out / "checkpoints" / "last.pt").read_bytes() == before
    with pytest.raises(Exception) as info:
        train(learning_rate=0.01)
    assert "different settings" in str(info.value) or "different settings" in str(info.value.__cause__)


def test_same_seed_same_metrics_and_weight_files(tiny_dataset, tmp_path):
    from monai.bundle import ConfigWorkflow

    histories = []
    for name in ("a", "b"):
        wf = ConfigWorkflow(
            config_file=TRAIN,
            workflow_type=None,
            logging_file=False,
            **tiny_overrides(tiny_dataset, tmp_path / name, num_epochs=2),
        )
        wf.initialize()
        wf.run()
        histories.append((tmp_path / name / "checkpoints" / "history.csv").read_text())
        manifest = json.loads((tmp_path / name / "checkpoints" / "manifest.json").read_text())
        assert manifest["seed"] == 0 and manifest["versions"]["torch"] == torch.__version__
    rows = [[list(map(float, line.split(","))) for line in h.splitlines()[1:]] for h in histories]
    np.testing.assert_allclose(rows[0], rows[1], rtol=0, atol=1e-6)
    # the weight files themselves are byte-identical, so their sha256 can be compared across runs
    for name in ("model.pt", "best.pt"):
        assert (tmp_path / "a" / "checkpoints" / name).read_bytes() == (
            tmp_path / "b" / "checkpoints" / name
        ).read_bytes()


def test_crossval_killed_and_restarted_keeps_finished_folds(tiny_dataset, tmp_path):
    overrides = tiny_overrides(tiny_dataset, tmp_path)
    overrides.pop("output_dir")
    args = [a for k, v in overrides.items() for a in ("--override", f"{k}={json.dumps(v)}")]
    cmd = [sys.executable, str(REPO_ROOT / "scripts" / "crossval.py"), "--output-dir", str(tmp_path / "cv"), *args]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = tmp_path / "cv" / "fold0" / "result.json"
    deadline = time.time() + 300
    while time.time() < deadline and not (tmp_path / "cv" / "fold1" / "checkpoints" / "last.pt").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.is_file() and not (tmp_path / "cv" / "fold1" / "result.json").exists()
    snapshot = first.read_bytes(), first.stat().st_mtime_ns
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (first.read_bytes(), first.stat().st_mtime_ns) == snapshot  # the finished fold is untouched
    assert all((tmp_path / "cv" / f"fold{k}" / "result.json").is_file() for k in range(4))
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'cv' / 'mlruns.db'}")
    runs = client.search_runs([client.get_experiment_by_name("uldpet-loocv-cpu-default").experiment_id])
    names = sorted(r.info.run_name for r in runs)
    assert names == ["fold0-sub-001", "fold1-sub-002", "fold2-sub-003", "fold3-sub-004", "summary"]


def test_atomic_writes_leave_old_files_intact_and_no_partial_files(tmp_path):
    target = tmp_path / "result.json"
    write_json({"v": 1}, target)
    with pytest.raises(RuntimeError):
        with atomic_path(target, overwrite=True) as tmp:
            tmp.write_text('{"v": 2, "trunc')
            raise RuntimeError("crash while writing")
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
    with pytest.raises(OutputExistsError):
        write_json({"v": 3}, target)


def test_logs_do_not_print_patient_tags(tiny_dataset, tmp_path):
    from monai.bundle import ConfigWorkflow

    from bundle.deploy.synthetic_dicom import write_pet_series

    wf = ConfigWorkflow(
        config_file=TRAIN, workflow_type=None, logging_file=False, **tiny_overrides(tiny_dataset, tmp_path / "t")
    )
    wf.initialize()
    wf.run()
    volume = nib.load(tiny_dataset / "sub-001" / "sub-001_pet_drf200.nii.gz").get_fdata().astype(np.float32)
    write_pet_series(
        volume,
        tmp_path / "in" / "study",
        spacing_mm=(4.0, 4.0, 4.0),
        patient_name="Secret^Person",
        patient_id="ID-SECRET-42",
    )
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        str(REPO_ROOT / "configs" / "inference.json"),
        *cli_args(
            {
                "bundle_root": str(REPO_ROOT),
                "ckpt_path": str(tmp_path / "t" / "checkpoints" / "model.pt"),
                "network_def#base_features": 4,
                "input_dir": str(tmp_path / "in"),
                "output_dir": str(tmp_path / "out"),
                "training_spacing": [4.0, 4.0, 4.0],
            }
        ),
    ]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    logs = proc.stdout + proc.stderr
    assert "Secret" not in logs and "ID-SECRET-42" not in logs
    import pydicom

    out = pydicom.dcmread(next((tmp_path / "out" / "study_denoised_dicom").glob("*.dcm")))
    assert str(out.PatientName) == "Secret^Person"  # the input study's own tags, and only those
