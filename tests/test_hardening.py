"""What a careless or hostile user did to the bundle, class by class (issue 17), each class with several cases:
lost or corrupted outputs, inputs taken for outputs, leaked test subjects, refusals that changed files, wrong results
reported as ok, tampered weights, inputs skipped without a word, MLflow faults, tracebacks for user errors, archive
bombs, and the low-severity rest. docs/reliability.md lists every case with its test."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import (
    REPO_ROOT,
    in_process_inference,
    load_script,
    tiny_inference_settings,
    tiny_overrides,
    user_error_line,
)
from monai.bundle import ConfigWorkflow

from bundle.deploy.synthetic_dicom import write_pet_series
from bundle.errors import BundleInputError, root_cause, user_error_message

TRAIN = str(REPO_ROOT / "configs" / "train.json")
INFERENCE = str(REPO_ROOT / "configs" / "inference.json")


_user_error = user_error_line


def _volume(tiny_dataset: Path, subject: str = "sub-002") -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(tiny_dataset / subject / f"{subject}_pet_drf200.nii.gz")
    return img.get_fdata().astype(np.float32), img.affine


def _inference(checkpoint: Path, input_dir: Path, output_dir: Path, **overrides: Any) -> ConfigWorkflow:
    """The inference config, initialised in-process for the tiny test network."""
    settings = tiny_inference_settings(checkpoint, input_dir=str(input_dir), output_dir=str(output_dir), **overrides)
    wf = ConfigWorkflow(config_file=INFERENCE, workflow_type=None, logging_file=False, **settings)
    wf.initialize()
    return wf


@pytest.fixture(scope="module")
def infer(tiny_trained):
    """Run the inference config in-process; returns its exit code (the summary is printed)."""
    return in_process_inference(tiny_trained / "checkpoints" / "model.pt")


# -- 1. a study's outputs appear together or not at all ------------------------------------------------------


def _series(tiny_dataset: Path, folder: Path, edit: str | None = None) -> Path:
    volume, _ = _volume(tiny_dataset)
    write_pet_series(volume, folder, spacing_mm=(4.0, 4.0, 4.0), origin_lps=(-126.0, -126.0, -30.0))
    files = sorted(folder.glob("*.dcm"))
    if edit == "missing_slice":
        files[len(files) // 2].unlink()
    elif edit in ("uneven_spacing", "duplicated_position"):
        import pydicom

        ds = pydicom.dcmread(files[5])
        z = float(ds.ImagePositionPatient[2]) + (1.3 if edit == "uneven_spacing" else 4.0)
        ds.ImagePositionPatient = [ds.ImagePositionPatient[0], ds.ImagePositionPatient[1], f"{z:.4f}"]
        ds.save_as(files[5])
    return folder


@pytest.mark.parametrize(
    "edit, message",
    [
        ("missing_slice", "missing between"),
        ("uneven_spacing", "uneven slice spacing"),
        ("duplicated_position", "share the position"),
    ],
)
def test_a_failed_study_leaves_nothing_and_is_not_skipped_on_rerun(
    tiny_dataset, infer, tmp_path, capsys, edit, message
):
    inputs = tmp_path / "in"
    _series(tiny_dataset, inputs / "bad_series", edit)
    for _ in range(2):  # the rerun fails again instead of trusting a leftover
        assert infer(inputs, tmp_path / "out") == 1
        printed = capsys.readouterr().out
        assert "0 denoised, 0 skipped, 1 failed" in printed and message in printed
        assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_outputs_are_published_together_and_skip_means_complete(tiny_dataset, infer, tmp_path, capsys):
    inputs = tmp_path / "in"
    _series(tiny_dataset, inputs / "series")
    out = tmp_path / "out"
    assert infer(inputs, out) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["series_denoised.json", "series_denoised.nii.gz", "series_denoised_dicom"]
    record = json.loads((out / "series_denoised.json").read_text())
    assert record["status"] == "complete" and set(record["sha256"]) == {
        "series_denoised.nii.gz",
        "series_denoised_dicom",
    }
    capsys.readouterr()
    cases = {
        # what an earlier run left -> what the rerun must do
        "complete": (lambda: None, "0 denoised, 1 skipped"),
        "killed_while_moving": (
            lambda: (
                shutil.rmtree(out / "series_denoised_dicom"),
                (out / "series_denoised.json").write_text(json.dumps(dict(record, status="moving"))),
            ),
            "1 denoised, 0 skipped",
        ),
        "outputs_deleted_after": (lambda: (out / "series_denoised.nii.gz").unlink(), "1 denoised, 0 skipped"),
    }
    for name, (damage, expected) in cases.items():
        damage()
        assert infer(inputs, out) == 0, name
        assert expected in capsys.readouterr().out, name
        assert (out / "series_denoised_dicom").is_dir() and nib.load(out / "series_denoised.nii.gz").shape, name
    # an output changed after it was written is somebody's work now: not skipped, not overwritten
    (out / "series_denoised.nii.gz").write_bytes(b"edited by hand")
    assert infer(inputs, out) == 1
    assert "was changed since this tool wrote it" in capsys.readouterr().out
    assert (out / "series_denoised.nii.gz").read_bytes() == b"edited by hand"


@pytest.mark.parametrize("foreign", ["series_denoised.nii.gz", "series_denoised_dicom"])
def test_a_file_under_an_output_name_without_a_record_is_never_overwritten(
    tiny_dataset, infer, tmp_path, capsys, foreign
):
    inputs = tmp_path / "in"
    _series(tiny_dataset, inputs / "series")
    out = tmp_path / "out"
    out.mkdir()
    (out / foreign).write_text("somebody else's file") if "." in foreign else (out / foreign).mkdir()
    assert infer(inputs, out) == 1
    assert "already exists and is not an output of this tool" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [foreign]


# -- 2. inputs are never outputs ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["same", "inside", "beside_a_file_input"])
def test_an_output_folder_inside_the_input_folder_is_refused(tiny_dataset, infer, tmp_path, where):
    inputs = tmp_path / "in"
    inputs.mkdir()
    volume, affine = _volume(tiny_dataset)
    nib.save(nib.Nifti1Image(volume, affine), inputs / "a_denoised.nii.gz")  # a real input with an output-like name
    before = (inputs / "a_denoised.nii.gz").read_bytes()
    source = inputs / "a_denoised.nii.gz" if where == "beside_a_file_input" else inputs
    out = {"same": inputs, "inside": inputs / "results", "beside_a_file_input": inputs}[where]
    message = _user_error(lambda: infer(source, out, overwrite=True))
    assert "setting output_dir" in message and "inside the input folder" in message
    assert sorted(p.name for p in inputs.iterdir()) == ["a_denoised.nii.gz"]
    assert (inputs / "a_denoised.nii.gz").read_bytes() == before


# -- 3. fold isolation catches near-duplicates ---------------------------------------------------------------


def _leaky_datalist(tiny_dataset: Path, tmp_path: Path, change: Callable[[np.ndarray], np.ndarray]) -> str:
    content = json.loads((tiny_dataset / "datalist.json").read_text())
    items = content["training"]
    for item in items:
        for key, value in list(item.items()):
            if key != "subject":
                item[key] = str(tiny_dataset / value)
    leaked = dict(items[0], subject="sub-099")
    for key in ("image", "label"):
        img = nib.load(items[0][key])
        path = tmp_path / f"copy_{key}.nii.gz"
        nib.save(nib.Nifti1Image(change(img.get_fdata().astype(np.float32)), img.affine), path)
        leaked[key] = str(path)
    content["training"] = items + [leaked]
    path = tmp_path / "leaky.json"
    path.write_text(json.dumps(content))
    return str(path)


def _one_voxel(d: np.ndarray) -> np.ndarray:
    d = d.copy()
    d[10, 10, 5] += 0.001
    return d


@pytest.mark.parametrize(
    "change",
    [_one_voxel, lambda d: d * 1000.0, lambda d: d[::-1].copy(), lambda d: d[:, ::-1, ::-1].copy() / 37.0 + 5.0],
    ids=["one_voxel_changed", "rescaled_units", "flipped", "flipped_rescaled_offset"],
)
def test_fold_isolation_refuses_a_near_copy_of_the_test_subject(tiny_dataset, tmp_path, change):
    from bundle.data import loocv_split
    from bundle.errors import InputDataError

    with pytest.raises(InputDataError, match="fold isolation: .* is a copy of test subject 'sub-001'"):
        loocv_split(_leaky_datalist(tiny_dataset, tmp_path, change), fold=0, num_val=1)


def test_fold_isolation_accepts_different_subjects(tiny_dataset):
    from bundle.data import loocv_split

    for fold in range(4):
        assert loocv_split(str(tiny_dataset / "datalist.json"), fold=fold, num_val=1)["test_subject"]


# -- 4. a refused restart changes nothing on disk ------------------------------------------------------------


@pytest.mark.parametrize("change", [{"learning_rate": 0.5}, {"base_features": 8}, {"loss_name": "l2"}])
def test_a_refused_restart_leaves_every_file_as_it_was(tiny_trained, tiny_dataset, tmp_path, change):
    run = tmp_path / "run"
    shutil.copytree(tiny_trained, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    settings = tiny_overrides(tiny_dataset, run, **change)

    def restart() -> None:
        wf = ConfigWorkflow(config_file=TRAIN, workflow_type=None, logging_file=False, **settings)
        wf.initialize()
        wf.run()

    _user_error(restart)
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before


# -- 5. implausible geometry, units and settings are refused, not blurred ------------------------------------


def _edited_nifti(tiny_dataset: Path, path: Path, edit: str) -> Path:
    volume, affine = _volume(tiny_dataset)
    img = nib.Nifti1Image(volume, affine)
    if edit == "tiny_voxels":
        img = nib.Nifti1Image(volume, np.diag([0.05, 0.05, 0.05, 1.0]))
    elif edit == "metres":
        img.header.set_xyzt_units(xyz="meter")
    elif edit == "singular_affine":
        singular = affine.copy()
        singular[:3, 2] = 0.0
        img.set_qform(None, code=0)  # nibabel cannot store a singular qform; a singular sform it can
        img.set_sform(singular, code=1)
    elif edit == "huge_voxels":
        img = nib.Nifti1Image(volume, np.diag([40.0, 40.0, 40.0, 1.0]))
    nib.save(img, path)
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        ("tiny_voxels", "implausible for PET"),
        ("huge_voxels", "implausible for PET"),
        ("metres", "spatial unit is 'meter'"),
        ("singular_affine", "affine is singular"),
    ],
)
def test_implausible_geometry_is_refused_by_name(tiny_dataset, infer, tmp_path, capsys, edit, message):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _edited_nifti(tiny_dataset, inputs / "study.nii.gz", edit)
    assert infer(inputs, tmp_path / "out") == 1
    printed = capsys.readouterr().out
    assert "1 failed" in printed and message in printed and "study" in printed
    assert not list((tmp_path / "out").glob("study_denoised*"))


@pytest.mark.parametrize("factor", [1000.0, 0.001, 200.0])
def test_a_label_in_other_units_than_its_image_is_refused(tiny_dataset, tmp_path, factor):
    ds = tmp_path / "data"
    shutil.copytree(tiny_dataset, ds)
    label = ds / "sub-003" / "sub-003_pet_full.nii.gz"
    img = nib.load(label)
    data = img.get_fdata().astype(np.float32) * factor
    label.unlink()
    nib.save(nib.Nifti1Image(data, img.affine), label)

    def train() -> None:
        wf = ConfigWorkflow(
            config_file=TRAIN, workflow_type=None, logging_file=False, **tiny_overrides(ds, tmp_path / "o")
        )
        wf.initialize()
        wf.run()

    message = _user_error(train)
    assert "sub-003_pet_full.nii.gz" in message and "same units" in message


@pytest.mark.parametrize(
    "args, setting",
    [
        (["--drf", "1e12"], "drf"),
        (["--drf", "1e6"], "drf"),
        (["--counts", "1e30"], "counts"),
        (["--counts", "10"], "counts"),
    ],
)
def test_simulation_settings_that_give_no_image_are_refused(tmp_path, args, setting, capsys):
    simulate = load_script("simulate")  # the command's main in-process (its one-line error and exit code are main's)
    with pytest.raises(SystemExit) as exit_info:
        simulate.main(["--output-dir", str(tmp_path / "o"), "--preset", "tiny", *args])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_info.value.code == 2 and lines[-1].startswith(f"error: ConfigValueError: setting {setting}:")
    assert not (tmp_path / "o").exists()


# -- 6. tampered shipped weights are refused ---------------------------------------------------------------


@pytest.fixture()
def shipped_copy(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "models", models)
    return models


@pytest.mark.parametrize("target", ["model.pt", "model.ts", "model.onnx"])
def test_a_flipped_byte_in_a_shipped_model_is_refused(shipped_copy, target):
    from bundle.weights import verify_shipped_file

    path = shipped_copy / target
    recorded = json.loads((shipped_copy / "model_provenance.json").read_text())
    if target != "model.pt" and target not in recorded.get("exports", {}):
        pytest.skip(f"{target} has no recorded sha256 (run scripts/export.py)")
    assert verify_shipped_file(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleInputError, match="sha256 .* differs .* recorded in"):
        verify_shipped_file(path)


def test_a_users_own_checkpoint_without_provenance_loads_with_a_note(tiny_trained, caplog):
    import logging

    from bundle.weights import verify_shipped_file

    with caplog.at_level(logging.INFO, logger="bundle.weights"):
        assert verify_shipped_file(tiny_trained / "checkpoints" / "model.pt") is False
    assert "not verified" in caplog.text


def test_tampered_weights_fail_inference_in_one_line(shipped_copy, tiny_dataset, tmp_path):
    data = bytearray((shipped_copy / "model.pt").read_bytes())
    data[-100] ^= 0x01
    (shipped_copy / "model.pt").write_bytes(bytes(data))
    inputs = tmp_path / "in"
    inputs.mkdir()
    volume, affine = _volume(tiny_dataset)
    nib.save(nib.Nifti1Image(volume, affine), inputs / "s.nii.gz")
    settings = {"network_def#base_features": 16, "training_spacing": [2.0, 2.0, 2.0]}  # the shipped network
    wf = _inference(shipped_copy / "model.pt", inputs, tmp_path / "o", **settings)
    assert "was changed or corrupted" in _user_error(wf.run)
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


# -- 7. every entry of the input folder is processed or reported -----------------------------------------------


def test_nested_series_and_stray_files_are_found_or_reported(tiny_dataset, tmp_path):
    from bundle.deploy.study_finder import scan_input

    root = tmp_path / "in"
    volume, affine = _volume(tiny_dataset)
    write_pet_series(volume[..., :4], root / "patient1" / "study1" / "pet", spacing_mm=(4.0, 4.0, 4.0))
    (root / "patient2").mkdir(parents=True)
    nib.save(nib.Nifti1Image(volume, affine), root / "patient2" / "scan.nii.gz")
    nib.save(nib.Nifti1Image(volume, affine), root / "top.nii")
    (root / "notes.txt").write_text("x")
    (root / "scan.mha").write_text("x")
    (root / ".hidden").write_text("x")
    (root / "empty").mkdir()
    (root / "patient1" / "study1" / "pet" / "sub").mkdir()
    os.symlink(root / "patient2", root / "link")
    studies, skipped = scan_input(root)
    assert [(s["name"], s["format"]) for s in studies] == [
        ("patient1_study1_pet", "dicom"),
        ("patient2_scan", "nifti"),
        ("top", "nifti"),
    ]
    reasons = {Path(p).name: r for p, r in skipped}
    assert set(reasons) == {"notes.txt", "scan.mha", ".hidden", "empty", "sub", "link"}
    assert "not a NIfTI file" in reasons["scan.mha"] and "empty folder" == reasons["empty"]
    # a study's MR beside it is its MR, not a study: NIfTI or a DICOM series folder; one without its study is skipped
    nib.save(nib.Nifti1Image(volume, affine), root / "patient2" / "scan_t1.nii.gz")
    nib.save(nib.Nifti1Image(volume, affine), root / "patient2" / "scan_FLAIR.nii")
    write_pet_series(volume[..., :4], root / "patient1" / "study1" / "pet_t1", spacing_mm=(4.0, 4.0, 4.0))
    nib.save(nib.Nifti1Image(volume, affine), root / "lonely_t1.nii.gz")
    studies, skipped = scan_input(root)
    assert [s["name"] for s in studies] == ["patient1_study1_pet", "patient2_scan", "top"]
    mr = {s["name"]: {k: Path(s[k]).name for k in ("t1", "flair") if k in s} for s in studies}
    assert mr == {
        "patient1_study1_pet": {"t1": "pet_t1"},
        "patient2_scan": {"t1": "scan_t1.nii.gz", "flair": "scan_FLAIR.nii"},
        "top": {},
    }
    assert "not beside it" in {Path(p).name: r for p, r in skipped}["lonely_t1.nii.gz"]


def test_skipped_entries_are_in_the_inference_summary(tiny_dataset, infer, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    volume, affine = _volume(tiny_dataset)
    nib.save(nib.Nifti1Image(volume, affine), inputs / "good.nii.gz")
    nib.save(nib.Nifti1Image(volume, affine), inputs / "good_t1.nii.gz")  # its MR: not denoised, not skipped
    (inputs / "readme.txt").write_text("x")
    assert infer(inputs, tmp_path / "out") == 0
    printed = capsys.readouterr().out
    assert "1 denoised, 1 skipped, 0 failed" in printed and "readme.txt" in printed and "not a NIfTI file" in printed
    assert not list((tmp_path / "out").glob("good_t1*"))


# -- 8. MLflow faults fail in seconds, naming tracking_uri ----------------------------------------------------


def _not_a_database(tmp_path: Path) -> str:
    (tmp_path / "x.db").write_text("this is not sqlite")
    return f"sqlite:///{tmp_path / 'x.db'}"


def _read_only_database(tmp_path: Path) -> str:
    path = tmp_path / "ro" / "mlruns.db"
    path.parent.mkdir()
    sqlite3.connect(path).execute("create table t (x int)").connection.commit()
    return f"sqlite:///{path}"  # made read-only by the test (os.access), which also holds for root


def _dead_server(tmp_path: Path) -> str:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "make, message",
    [
        (_not_a_database, "is not an SQLite database"),
        (_read_only_database, "read-only"),
        (_dead_server, "does not answer"),
    ],
    ids=["not_sqlite", "read_only", "unreachable_server"],
)
def test_a_bad_tracking_store_fails_in_seconds_naming_tracking_uri(tiny_dataset, tmp_path, monkeypatch, make, message):
    uri = make(tmp_path)
    if make is _read_only_database:
        import bundle.mlflow_tracking

        real_access = os.access
        monkeypatch.setattr(
            bundle.mlflow_tracking.os,
            "access",
            lambda p, mode: False if "ro" in Path(p).parts else real_access(p, mode),
        )
    settings = tiny_overrides(tiny_dataset, tmp_path / "o", **{"tracking#tracking_uri": uri})
    start = time.perf_counter()

    def train() -> None:
        wf = ConfigWorkflow(config_file=TRAIN, workflow_type=None, logging_file=False, **settings)
        wf.initialize()
        wf.run()

    error = _user_error(train)
    assert "setting tracking_uri" in error and message in error and time.perf_counter() - start < 60
    assert not (tmp_path / "o" / "checkpoints").exists()
    from bundle.loocv import CrossValidation

    with pytest.raises(BundleInputError, match="setting tracking_uri"):
        CrossValidation([TRAIN], tmp_path / "cv", tracking_uri=uri)


# -- 9. user errors during training end in one line ------------------------------------------------------------


def _run_training(
    args: list[str], env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", TRAIN, *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, env=dict(os.environ, **(env or {}))
    )


def _cli(overrides: dict[str, Any]) -> list[str]:
    out = []
    for key, value in overrides.items():
        out += [f"--{key}", value if isinstance(value, str) else repr(value)]
    return out


@pytest.mark.parametrize("case", ["truncated_last", "changed_settings", "unwritable_output"])
def test_user_errors_during_training_end_in_one_line(tiny_trained, tiny_dataset, tmp_path, case):
    run = tmp_path / "run"
    shutil.copytree(tiny_trained, run)
    overrides = tiny_overrides(tiny_dataset, run)
    if case == "truncated_last":
        last = run / "checkpoints" / "last.pt"
        last.write_bytes(last.read_bytes()[:3000])
        expected = "truncated or corrupt"
    elif case == "changed_settings":
        overrides["learning_rate"] = 0.5
        expected = "different settings"
    else:
        blocker = tmp_path / "blocker"
        blocker.write_text("a file, not a folder")
        overrides["output_dir"] = str(blocker / "run")
        expected = "setting output_dir"
    proc = _run_training(_cli(overrides))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    last_line = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert last_line.startswith("error: ") and expected in last_line


def test_disk_full_reports_the_os_error_not_its_aftermath():
    try:
        try:
            raise OSError(28, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc] . unexpected pos 64 vs 0")
    except RuntimeError as exc:
        assert "No space left on device" in user_error_message(exc)
        assert isinstance(root_cause(exc), OSError)


def test_ctrl_c_during_training_ends_in_one_line(tiny_dataset, tmp_path):
    overrides = tiny_overrides(tiny_dataset, tmp_path / "run", num_epochs=50, slices_per_volume=64)
    cmd = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", TRAIN, *_cli(overrides)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    deadline = time.time() + 240
    while time.time() < deadline and not (tmp_path / "run" / "checkpoints" / "last.pt").exists():
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in out + err
    assert [line for line in err.splitlines() if line.strip()][-1] == "error: interrupted"


# -- 10. archive verification streams and caps --------------------------------------------------------------


def _archive(
    tmp_path: Path, members: dict[str, bytes], manifest: str | None = None, sidecar: str | None = None
) -> Path:
    import hashlib

    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(f"b/{name}", data)
        lines = (
            manifest
            if manifest is not None
            else "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in members.items())
        )
        zf.writestr("b/checksums.sha256", lines)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    Path(str(path) + ".sha256").write_text(sidecar if sidecar is not None else f"{digest}  b.zip\n")
    return path


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda t, m: _archive(t, {"models/model.pt": b"w", "big.bin": b"\0" * (3 << 30 >> 8)}, sidecar=None), None),
        (
            lambda t, m: _archive(t, {"models/model.pt": b"w"}, manifest="not a checksum line\n"),
            "is not '<sha256>  <path>'",
        ),
        (lambda t, m: _archive(t, {"models/model.pt": b"w"}, sidecar=""), "empty or not a sha256 line"),
        (lambda t, m: _archive(t, {"models/model.pt": b"w"}, sidecar="zz  b.zip"), "empty or not a sha256 line"),
    ],
    ids=["inflates_over_the_cap", "malformed_manifest", "empty_sidecar", "garbage_sidecar"],
)
def test_archive_verification_refuses_bad_checksum_files_in_one_line(tmp_path, monkeypatch, build, message):
    import bundle.packaging as packaging

    monkeypatch.setattr(packaging, "MAX_INFLATED_BYTES", 1 << 20)
    archive = build(tmp_path, message)
    expected = message or "would inflate to"
    with pytest.raises(BundleInputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        packaging.verify_archive(archive)


def test_a_member_whose_declared_size_lies_is_refused_in_one_line(tmp_path, monkeypatch):
    import bundle.packaging as packaging

    archive = _archive(tmp_path, {"models/model.pt": b"w" * 4096})
    real_getinfo = zipfile.ZipFile.getinfo

    def lying_getinfo(self, name):  # a central directory that understates the size, as in a zip bomb
        info = real_getinfo(self, name)
        if name.endswith("model.pt"):
            info.file_size = 100
        return info

    monkeypatch.setattr(zipfile.ZipFile, "getinfo", lying_getinfo)
    with pytest.raises(BundleInputError, match="is corrupt|inflates beyond its declared size"):
        packaging.verify_archive(archive)  # zipfile reads no more than the declared size, then fails its CRC


# -- 11. the low-severity rest ---------------------------------------------------------------------------------


def test_a_misspelled_override_is_refused_before_anything_runs(tmp_path):
    proc = _run_training(
        ["--bundle_root", str(REPO_ROOT), "--learning_rat", "0.5", "--output_dir", str(tmp_path / "o")]
        + ["--dataset_dir", str(tmp_path / "nodata")]
    )
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert (
        proc.returncode != 0
        and last.startswith("error: ConfigValueError: setting learning_rat")
        and "learning_rate" in last
    )
    assert not (tmp_path / "nodata").exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "override, close",
    [("--num_epoch", "num_epochs"), ("--basefeatures", "base_features"), ("--network_deff#x", "network_def")],
)
def test_misspelled_overrides_name_the_closest_setting(override, close):
    from bundle.errors import ConfigValueError
    from bundle.settings import refuse_unknown_overrides

    argv = ["/x/monai/bundle/__main__.py", "run", "training", "--config_file", TRAIN, override, "3"]
    with pytest.raises(ConfigValueError, match=f"setting {override[2:]}: no such setting .* {close}"):
        refuse_unknown_overrides(argv)
    assert refuse_unknown_overrides(["/x/other_program.py", override, "3"])  # only monai.bundle command lines


def test_known_overrides_pass_the_check():
    from bundle.settings import unknown_overrides

    argv = [
        "training",
        "--config_file",
        f"['{TRAIN}']",
        "--num_epochs",
        "2",
        "--network_def#base_features",
        "8",
        "--run_id",
        "x",
    ]
    assert unknown_overrides(argv) == []


def test_ctrl_c_during_inference_prints_the_summary_and_one_line(
    tiny_dataset, tmp_path, tiny_trained, monkeypatch, capsys
):
    from bundle.deploy import batch

    inputs = tmp_path / "in"
    inputs.mkdir()
    volume, affine = _volume(tiny_dataset)
    for name in ("a", "b"):
        nib.save(nib.Nifti1Image(volume, affine), inputs / f"{name}.nii.gz")
    real = batch.BatchInference.denoise
    calls = []

    def interrupted(self, index, staging=None):
        calls.append(index)
        if index == 1:
            raise KeyboardInterrupt
        return real(self, index, staging)

    monkeypatch.setattr(batch.BatchInference, "denoise", interrupted)
    wf = _inference(tiny_trained / "checkpoints" / "model.pt", inputs, tmp_path / "o")
    with pytest.raises(SystemExit) as info:
        wf.run()
    captured = capsys.readouterr()
    assert info.value.code == 130 and captured.err.strip().splitlines()[-1] == "error: interrupted"
    assert "1 denoised, 0 skipped, 1 failed" in captured.out and "interrupted" in captured.out
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a_denoised.json", "a_denoised.nii.gz"]


@pytest.mark.parametrize("where", ["inference_output", "checkpoints", "simulation_output"])
def test_stale_temporaries_of_killed_runs_are_cleaned_on_start(tmp_path, where):
    from bundle.deploy.study_outputs import clean_stale_staging
    from bundle.io import clean_stale_temporaries

    folder = tmp_path / where
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = [folder / f".last.tmp-{pid}-0123abcd.pt", folder / f".tmp-study-{pid}-89abcdef"]
    stale[0].write_text("x")
    stale[1].mkdir()
    alive = folder / f".best.tmp-{os.getpid()}-0123abcd.pt"
    alive.write_text("x")
    mine = folder / "keep.tmp-notours"
    mine.write_text("x")
    removed = clean_stale_staging(folder) if where == "inference_output" else clean_stale_temporaries(folder)
    assert set(removed) == (set(stale) if where == "inference_output" else {stale[0]})
    assert alive.exists() and mine.exists()


@pytest.mark.parametrize("reader", ["checkpoint", "image", "tracking_store"])
def test_a_permission_problem_is_not_reported_as_corrupt(tiny_trained, tiny_dataset, tmp_path, monkeypatch, reader):
    """Permissions are simulated (the suite may run as root, who reads everything)."""
    import bundle.mlflow_tracking
    import bundle.transforms.loading
    from bundle.mlflow_tracking import check_tracking_store
    from bundle.transforms import LoadPETd
    from bundle.weights import load_checkpoint

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    if reader == "checkpoint":
        monkeypatch.setattr(torch, "load", denied)
        message = _user_error(lambda: load_checkpoint(tiny_trained / "checkpoints" / "model.pt"))
    elif reader == "image":
        monkeypatch.setattr(bundle.transforms.loading.os, "access", lambda path, mode: False)
        message = _user_error(
            lambda: LoadPETd("image")({"image": str(tiny_dataset / "sub-001" / "sub-001_pet_full.nii.gz")})
        )
    else:
        sqlite3.connect(tmp_path / "m.db").execute("create table t (x int)").connection.commit()
        monkeypatch.setattr(bundle.mlflow_tracking.os, "access", lambda path, mode: False)
        message = _user_error(lambda: check_tracking_store(f"sqlite:///{tmp_path / 'm.db'}"))
    assert ("permission denied" in message or "read-only" in message) and "corrupt" not in message
