"""Bad input, table-driven: every case gets a one-line error naming the file or setting, a non-zero exit, no
traceback wall, and no partial output. Cases run in-process through the same code paths as the CLIs; a few
run as real subprocesses to check the exit codes and the printed lines end to end."""

from __future__ import annotations

import errno
import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import REPO_ROOT, load_script, run_bundle, tiny_overrides
from monai.bundle import ConfigWorkflow

from bundle.errors import user_error_message

TRAIN = str(REPO_ROOT / "configs" / "train.json")
EVALUATE = str(REPO_ROOT / "configs" / "evaluate.json")
INFERENCE = str(REPO_ROOT / "configs" / "inference.json")


# -- building bad datasets ---------------------------------------------------------------------------------


def _copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_image(path: Path, fn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> None:
    img = nib.load(path)
    data, affine = fn(img.get_fdata().astype(np.float32), img.affine.copy())
    path.unlink()
    nib.save(nib.Nifti1Image(data, affine), path)


def _datalist(ds: Path) -> dict:
    return json.loads((ds / "datalist.json").read_text())


def _write_datalist(ds: Path, content: dict) -> None:
    (ds / "datalist.json").write_text(json.dumps(content))


def _low(ds: Path, subject: str = "sub-002") -> Path:
    return ds / subject / f"{subject}_pet_drf200.nii.gz"


def _full(ds: Path, subject: str = "sub-002") -> Path:
    return ds / subject / f"{subject}_pet_full.nii.gz"


TRAINING_CASES: dict[str, tuple[Callable[[Path], Any], dict[str, Any], str]] = {
    # name: (dataset edit, extra overrides, expected text in the message)
    "nan_in_image": (
        lambda ds: _edit_image(_low(ds), lambda d, a: (np.where(d > d.max() / 2, np.nan, d), a)),
        {},
        "NaN or Inf",
    ),
    "inf_in_image": (
        lambda ds: _edit_image(_full(ds), lambda d, a: (np.where(d > d.max() / 2, np.inf, d), a)),
        {},
        "NaN or Inf",
    ),
    "all_zero_volume": (lambda ds: _edit_image(_low(ds), lambda d, a: (np.zeros_like(d), a)), {}, "all zero"),
    "negative_volume": (lambda ds: _edit_image(_low(ds), lambda d, a: (-d, a)), {}, "all zero or negative"),
    "shape_mismatch": (lambda ds: _edit_image(_full(ds), lambda d, a: (d[:-2], a)), {}, "differs from"),
    "spacing_mismatch": (
        lambda ds: _edit_image(_full(ds), lambda d, a: (d, a @ np.diag([1.1, 1.0, 1.0, 1.0]))),
        {},
        "voxel spacing differs",
    ),
    "orientation_mismatch": (
        lambda ds: _edit_image(_full(ds), lambda d, a: (d, a @ np.diag([-1.0, 1.0, 1.0, 1.0]))),
        {},
        "orientation or origin",
    ),
    "two_dimensional_image": (
        lambda ds: [_edit_image(p, lambda d, a: (d[..., 0], a)) for p in (_low(ds), _full(ds))],
        {},
        "2D",
    ),
    "four_dimensional_image": (
        lambda ds: [_edit_image(p, lambda d, a: (np.stack([d, d], -1), a)) for p in (_low(ds), _full(ds))],
        {},
        "several frames",
    ),
    "too_few_slices": (
        lambda ds: [
            _edit_image(p, lambda d, a: (d[..., :2], a))
            for p in (_low(ds), _full(ds), ds / "sub-002" / "sub-002_brain_mask.nii.gz")
        ],
        {},
        "axial slices",
    ),
    "truncated_nifti": (
        lambda ds: _low(ds).write_bytes(gzip.compress(_low(ds).read_bytes()[:5000])[:3000]),
        {},
        "cannot be read",
    ),
    "not_an_image_named_nii_gz": (lambda ds: _low(ds).write_text("hello"), {}, "cannot be read"),
    "missing_file": (lambda ds: _low(ds).unlink(), {}, "does not exist"),
    "datalist_missing_keys": (
        lambda ds: _write_datalist(
            ds, {"training": [{k: v for k, v in i.items() if k != "label"} for i in _datalist(ds)["training"]]}
        ),
        {},
        "missing key",
    ),
    "duplicate_subjects": (
        lambda ds: _write_datalist(ds, {"training": [dict(i, subject="sub-001") for i in _datalist(ds)["training"]]}),
        {},
        "appears twice",
    ),
    "test_subject_inside_training": (
        lambda ds: _write_datalist(
            ds, {"training": _datalist(ds)["training"] + [dict(_datalist(ds)["training"][0], subject="sub-777")]}
        ),
        {},
        "fold isolation",
    ),
    "empty_mask": (
        lambda ds: _edit_image(ds / "sub-002" / "sub-002_brain_mask.nii.gz", lambda d, a: (np.zeros_like(d), a)),
        {},
        "mask is empty",
    ),
    "fold_out_of_range": (lambda ds: None, {"fold": 99}, "setting fold"),
    "wrong_type_setting": (lambda ds: None, {"num_slices": "three"}, "setting num_slices"),
    "even_slice_count": (lambda ds: None, {"num_slices": 4}, "setting num_slices"),
    "unknown_loss": (lambda ds: None, {"loss_name": "huber"}, "setting loss_name"),
    "negative_learning_rate": (lambda ds: None, {"learning_rate": -0.1}, "setting learning_rate"),
    "unknown_precision": (lambda ds: None, {"precision": "fp8"}, "setting precision"),
}


def _user_error(fn: Callable[[], Any]) -> str:
    with pytest.raises(BaseException) as info:
        fn()
    message = user_error_message(info.value)
    assert message is not None, f"not reported as a user error: {info.value!r}"
    assert "\n" not in message
    return message


@pytest.mark.parametrize("case", sorted(TRAINING_CASES))
def test_training_refuses(case, tiny_dataset, tmp_path):
    edit, overrides, expected = TRAINING_CASES[case]
    ds = _copy_dataset(tiny_dataset, tmp_path / "data")
    edit(ds)
    out = tmp_path / "out"
    settings = tiny_overrides(ds, out, num_val_subjects=1, **overrides)

    def run() -> None:
        wf = ConfigWorkflow(config_file=TRAIN, workflow_type=None, logging_file=False, **settings)
        wf.initialize()
        wf.run()

    message = _user_error(run)
    assert expected in message, message
    checkpoints = out / "checkpoints"
    assert not checkpoints.exists() or not any(p.suffix == ".pt" for p in checkpoints.iterdir())


@pytest.fixture(scope="module")
def trained_once(tiny_trained):
    return tiny_trained


def _evaluate(tiny_dataset, out, **overrides):
    wf = ConfigWorkflow(
        config_file=[TRAIN, EVALUATE],
        workflow_type=None,
        logging_file=False,
        **tiny_overrides(tiny_dataset, out, baselines=[], **overrides),
    )
    wf.initialize()
    wf.run()


def test_evaluation_refuses_a_checkpoint_of_another_architecture(trained_once, tiny_dataset, tmp_path):
    message = _user_error(
        lambda: _evaluate(
            tiny_dataset, tmp_path, ckpt_path=str(trained_once / "checkpoints" / "model.pt"), base_features=8
        )
    )
    assert "different network architecture" in message
    assert not (tmp_path / "eval" / "metrics_per_subject.csv").exists()


def test_evaluation_refuses_a_truncated_checkpoint(trained_once, tiny_dataset, tmp_path):
    bad = tmp_path / "truncated.pt"
    bad.write_bytes((trained_once / "checkpoints" / "model.pt").read_bytes()[:2000])
    message = _user_error(lambda: _evaluate(tiny_dataset, tmp_path, ckpt_path=str(bad)))
    assert "truncated or corrupt" in message and "truncated.pt" in message


def test_evaluation_refuses_a_checkpoint_with_a_malicious_pickle(trained_once, tiny_dataset, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "evil.pt"
    torch.save({"network": Payload()}, bad)
    message = _user_error(lambda: _evaluate(tiny_dataset, tmp_path, ckpt_path=str(bad)))
    assert "refused" in message and not marker.exists()


def test_simulator_full_disk_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    import bundle.io

    def full_disk(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bundle.io.os, "fsync", full_disk)
    with pytest.raises(SystemExit) as info:
        load_script("simulate").main(
            ["--output-dir", str(tmp_path / "out"), "--preset", "tiny", "--subjects", "1", "--no-progress"]
        )
    assert info.value.code != 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "No space left on device" in err[0]
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_inference_refuses_an_unwritable_output_folder_and_a_missing_input(trained_once, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    base = {
        "bundle_root": str(REPO_ROOT),
        "ckpt_path": str(trained_once / "checkpoints" / "model.pt"),
        "network_def#base_features": 4,
        "progress": False,
        "training_spacing": [4.0, 4.0, 4.0],
    }
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(REPO_ROOT / "LICENSE", inputs / "x.nii.gz")

    def infer(**overrides):
        wf = ConfigWorkflow(config_file=INFERENCE, workflow_type=None, logging_file=False, **base, **overrides)
        wf.initialize()
        wf.run()

    assert "cannot be written" in _user_error(lambda: infer(input_dir=str(inputs), output_dir=str(blocker / "out")))
    assert "input_dir" in _user_error(
        lambda: infer(input_dir=str(tmp_path / "nowhere"), output_dir=str(tmp_path / "o"))
    )
    assert "input_dir" in _user_error(lambda: infer(output_dir=str(tmp_path / "o")))


def test_cli_processes_exit_non_zero_with_one_line_and_no_traceback(tiny_dataset, trained_once, tmp_path):
    ds = _copy_dataset(tiny_dataset, tmp_path / "data")
    _edit_image(_low(ds), lambda d, a: (np.where(d > d.max() / 2, np.nan, d), a))
    proc = run_bundle("training", [TRAIN], tiny_overrides(ds, tmp_path / "out"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("error: InputDataError:") and "sub-002_pet_drf200.nii.gz" in last and "NaN" in last
    # the debug switch shows the full traceback
    debug = run_bundle("training", [TRAIN], tiny_overrides(ds, tmp_path / "out"), env={"ULDPET_DEBUG": "1"})
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_bad_studies_and_good_ones_in_the_same_batch(trained_once, tiny_dataset, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(_low(tiny_dataset, "sub-001"), inputs / "good.nii.gz")
    img = nib.load(_low(tiny_dataset, "sub-001"))
    nib.save(nib.Nifti1Image(np.full(img.shape, np.nan, np.float32), img.affine), inputs / "nan.nii.gz")
    (inputs / "truncated.nii.gz").write_bytes(_low(tiny_dataset, "sub-001").read_bytes()[:4000])
    proc = run_bundle(
        "run",
        [INFERENCE],
        {
            "bundle_root": str(REPO_ROOT),
            "ckpt_path": str(trained_once / "checkpoints" / "model.pt"),
            "network_def#base_features": 4,
            "progress": False,
            "input_dir": str(inputs),
            "output_dir": str(tmp_path / "out"),
            "training_spacing": [4.0, 4.0, 4.0],
        },
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "1 denoised, 0 skipped, 2 failed" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good_denoised.json", "good_denoised.nii.gz"]
