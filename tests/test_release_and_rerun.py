"""Releases and reruns that cannot ship the wrong model or keep the wrong result (issue 30): each case of the issue
gives a one-line error naming the file or setting, a non-zero exit, nothing lost and nothing stale used.
docs/reliability.md lists every case with its test."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from helpers import REPO_ROOT, in_process_inference, load_script, tiny_inference_settings, user_error_line

from bundle.deploy.dose_input import DoseInput, trained_drfs
from bundle.deploy.output_lock import LOCK_NAME, OutputFolderLock
from bundle.errors import ConfigValueError, InputDataError, OutputExistsError
from bundle.io import file_sha256
from bundle.release import ship_fold_checkpoint, ship_generalist
from bundle.release_transaction import JOURNAL_NAME, recover

INFERENCE = str(REPO_ROOT / "configs" / "inference.json")
META = REPO_ROOT / "configs" / "metadata.json"


_user_error = user_error_line


def _script_error(main: Callable[[list[str]], int], args: list[str], capsys) -> str:
    """A script's one-line error: exit 2 and a single `error: ...` line on stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture(scope="module")
def infer(tiny_trained):
    """Run the inference config in-process on the tiny network (fp32); returns the exit code."""
    return in_process_inference(tiny_trained / "checkpoints" / "model.pt", precision="fp32")


def _study(tiny_dataset: Path, folder: Path, subject: str = "sub-002") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_dataset / subject / f"{subject}_pet_drf200.nii.gz", folder / "study.nii.gz")
    return folder


# -- a study's record says what made it; a rerun skips only when everything matches ---------------------------


@pytest.mark.parametrize(
    "change, overrides, expected",
    [
        ("nothing", {}, "0 denoised, 1 skipped, 0 failed"),
        ("input replaced by another scan", {}, "input (the file changed since) differ"),
        ("input replaced, --overwrite", {"overwrite": True}, "1 denoised, 0 skipped, 0 failed"),
        ("another precision", {"precision": "bf16"}, "precision ('fp32' then, 'bf16' now) differ"),
        ("the pre-0.2.1 output mode", {"native_grid_correction": False}, "native_grid_correction (True then"),
        ("a record without what made it", {}, "(the record does not say what made the outputs) differ"),
    ],
)
def test_a_rerun_skips_only_what_the_same_input_model_and_settings_made(
    change, overrides, expected, infer, tiny_dataset, tmp_path, capsys
):
    studies, out = _study(tiny_dataset, tmp_path / "in"), tmp_path / "out"
    assert infer(studies, out) == 0
    record_path = out / "study_denoised.json"
    record = json.loads(record_path.read_text())
    made_by = record["made_by"]
    assert made_by["input_sha256"] == file_sha256(studies / "study.nii.gz") and len(made_by["model_sha256"]) == 64
    assert made_by["backend"] == "torch" and made_by["precision"] == "fp32"
    before = file_sha256(out / "study_denoised.nii.gz")
    if change.startswith("input replaced"):
        _study(tiny_dataset, studies, "sub-003")
    if change == "a record without what made it":
        record.pop("made_by")
        record_path.write_text(json.dumps(record))
    capsys.readouterr()
    code = infer(studies, out, **overrides)
    printed = capsys.readouterr().out
    assert expected in printed
    redone = "1 denoised" in expected
    assert code == (0 if "skipped, 0 failed" in expected else 1)
    assert (file_sha256(out / "study_denoised.nii.gz") == before) is not redone  # kept unless redone


# -- one writer per output folder -------------------------------------------------------------------------------


def test_a_second_run_into_a_held_output_folder_fails_fast_and_a_stale_lock_is_taken_over(
    infer, tiny_dataset, tmp_path
):
    studies, out = _study(tiny_dataset, tmp_path / "in"), tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK_NAME).write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename}))
        message = _user_error(lambda: infer(studies, out))
        assert "setting output_dir" in message and "being written by another run" in message
        assert not (out / "study_denoised.nii.gz").exists()
    finally:
        holder.kill()
        holder.wait()
    assert infer(studies, out) == 0  # the holder is gone: its lock is stale and taken over
    assert (out / "study_denoised.nii.gz").is_file() and not (out / LOCK_NAME).exists()  # released on exit


def test_two_concurrent_inference_runs_into_one_folder_one_refused(tiny_trained, tiny_dataset, tmp_path):
    from helpers import cli_args

    studies, out = _study(tiny_dataset, tmp_path / "in"), tmp_path / "out"
    settings = tiny_inference_settings(tiny_trained / "checkpoints" / "model.pt", input_dir=str(studies))
    settings["output_dir"] = str(out)
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", INFERENCE, *cli_args(settings)]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    runs = [subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    results = [(p.wait(timeout=300), *p.communicate()) for p in runs]
    codes = sorted(code for code, _, _ in results)
    refused = [err for code, _, err in results if code != 0]
    # either both ran one after the other (the first finished before the second started: then the second skipped),
    # or the second was refused by the lock; never two writers at once
    assert codes == [0, 0] or (codes[0] == 0 and refused and "being written by another run" in refused[0])
    assert (out / "study_denoised.nii.gz").is_file() and not (out / LOCK_NAME).exists()


def test_the_lock_is_exclusive_in_process_too(tmp_path):
    with OutputFolderLock(tmp_path):
        (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": os.getppid(), "host": os.uname().nodename}))
        with pytest.raises(OutputExistsError, match="being written by another run"):
            OutputFolderLock(tmp_path).acquire()


# -- settings outside what the model knows ------------------------------------------------------------------


def test_a_drf_above_the_trained_range_is_refused_and_one_below_it_is_named(caplog, tmp_path):
    with pytest.raises(ConfigValueError, match=r"setting drf: 1e\+06 is above the DRFs the model was trained on"):
        DoseInput(1e6, trained_range=(2.0, 200.0))
    with caplog.at_level(logging.WARNING, logger="bundle.deploy.dose_input"):
        dose = DoseInput(1.5, trained_range=(2.0, 200.0))
    assert dose.drf == 1.5 and "1.5 is below the DRFs the model was trained on" in caplog.text
    code = dose("study", torch.ones(1, 4, 4, 4))
    assert code.shape == (1, 4, 4, 4) and dose.used["study"] == {"drf": 1.5, "source": "given"}
    with pytest.raises(ConfigValueError, match="setting drf: the dose-conditioned model needs"):
        DoseInput(None).check()
    # the trained range comes from the weights' provenance
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"weights")
    provenance = tmp_path / "model_provenance.json"
    provenance.write_text(json.dumps({"sha256": file_sha256(weights), "training_settings": {"train_drfs": "[4, 50]"}}))
    assert trained_drfs(provenance, weights) == (4.0, 50.0)
    assert trained_drfs(tmp_path / "none.json", weights) == (2.0, 200.0)


# -- the shipped weights cannot be checked away; an export cannot outlive its weights -------------------------


@pytest.fixture()
def shipped(tmp_path, monkeypatch):
    """A copy of models/ that the bundle takes as its own shipped folder."""
    import bundle.weights

    models = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "models", models)
    monkeypatch.setattr(bundle.weights, "SHIPPED_MODELS_DIR", models)
    return models


def test_deleting_the_shipped_provenance_is_an_error_not_a_skipped_check(shipped, tiny_trained):
    from bundle.weights import verify_shipped_file

    assert verify_shipped_file(shipped / "model.pt")
    (shipped / "model_provenance.json").unlink()
    for name in ("model.pt", "model.ts", "model.onnx"):
        with pytest.raises(InputDataError, match="the shipped model's provenance .* is missing"):
            verify_shipped_file(shipped / name)
    assert verify_shipped_file(tiny_trained / "checkpoints" / "model.pt") is False  # a user's own: allowed


def test_an_export_of_other_weights_or_not_recorded_is_refused_by_its_backend(shipped):
    from bundle.deploy.backends import OnnxModel
    from bundle.weights import verify_shipped_file

    record = json.loads((shipped / "model_provenance.json").read_text())
    assert all(isinstance(e, dict) and e["weights_sha256"] == record["sha256"] for e in record["exports"].values())
    stale = dict(record, exports={k: dict(v, weights_sha256="0" * 64) for k, v in record["exports"].items()})
    (shipped / "model_provenance.json").write_text(json.dumps(stale))
    with pytest.raises(InputDataError, match="exported from other weights"):
        OnnxModel(shipped / "model.onnx")
    unrecorded = dict(record, exports={})
    (shipped / "model_provenance.json").write_text(json.dumps(unrecorded))
    with pytest.raises(InputDataError, match="not recorded in"):
        verify_shipped_file(shipped / "model.ts")


# -- a release is one transaction ---------------------------------------------------------------------------


def _fake_cross_validation(folder: Path, psnrs: list[float], weight: float) -> Path:
    for fold, psnr in enumerate(psnrs):
        d = folder / f"fold{fold}"
        (d / "checkpoints").mkdir(parents=True)
        torch.save({"network": {"w": torch.full((2,), weight + fold)}}, d / "checkpoints" / "best.pt")
        metrics = {"subject": f"sub-{fold + 1:03d}", "network_psnr": psnr, "network_nrmse": 0.1, "network_ssim": 0.8}
        result = {"fold": fold, "test_subject": metrics["subject"], "metrics": metrics}
        (d / "result.json").write_text(json.dumps(result))
        (d / "config.json").write_text(json.dumps({"profile": "cpu-default", "dataset_dir": "data/x"}))
    return folder


def _state(models: Path, meta: Path) -> dict[str, Any]:
    """What a consistent release holds: the weights' value, the provenance's sha256 and source, the metadata."""
    weights = torch.load(models / "model.pt", weights_only=True)["w"]
    provenance = json.loads((models / "model_provenance.json").read_text())
    return {
        "weights": float(weights[0]),
        "sha_matches": provenance["sha256"] == file_sha256(models / "model.pt"),
        "source": Path(provenance["source"]).parts[-4],
        "meta_psnr": json.loads(meta.read_text())["eval_metrics"]["mean_network_psnr"],
    }


@pytest.fixture()
def released(tmp_path):
    """An old release (cross-validation 'old', fold 1) and a new cross-validation ('new') to release over it."""
    old, new = _fake_cross_validation(tmp_path / "old", [27.0, 28.0], 10.0), _fake_cross_validation(
        tmp_path / "new", [30.0, 31.0], 20.0
    )
    meta, models = tmp_path / "metadata.json", tmp_path / "models"
    shutil.copyfile(META, meta)
    ship_fold_checkpoint(old, 1, models, meta)
    return {"old": old, "new": new, "meta": meta, "models": models}


OLD_STATE = {"weights": 11.0, "sha_matches": True, "source": "old", "meta_psnr": 27.5}
NEW_STATE = {"weights": 21.0, "sha_matches": True, "source": "new", "meta_psnr": 30.5}


def test_a_refused_release_changes_nothing(released, tmp_path):
    models, meta = released["models"], released["meta"]
    before = {p.name: file_sha256(p) for p in [*models.iterdir(), meta]}
    (released["new"] / "fold1" / "result.json").write_text(json.dumps({"fold": 1}))  # no metrics
    message = _user_error(lambda: ship_fold_checkpoint(released["new"], 1, models, meta, overwrite=True))
    assert "result.json" in message
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"network": {"w": torch.zeros(2)}}, run / "checkpoints" / "best.pt")
    (run / "checkpoints" / "manifest.json").write_text(json.dumps({"settings": {}}))
    report = tmp_path / "report.json"
    for content, text in (
        ({"runs": {"r": str(run / "checkpoints")}}, "no evaluation records"),
        (
            {"runs": {"r": str(run / "checkpoints")}, "records": [{"method": "r", "test_set": "paper", "psnr": 99.0}]},
            "measured weights with sha256 None",
        ),
        (
            {
                "runs": {"r": str(run / "checkpoints")},
                "weights_sha256": {"r": "0" * 64},
                "records": [{"method": "r", "test_set": "paper", "psnr": 99.0}],
            },
            "measured weights with sha256 000000000000",
        ),
    ):
        report.write_text(json.dumps(content))
        message = _user_error(lambda: ship_generalist(run, report, models, meta, overwrite=True))
        assert text in message and "--report" in message
    sha = file_sha256(run / "checkpoints" / "best.pt")
    report.write_text(json.dumps({**content, "weights_sha256": {"r": sha}}))  # a report of these weights, but
    stale = {"weights": "best.pt", "sha256": "1" * 64, "detail_gain": {"detail_drf": 50.0}}  # fits of other ones
    (run / "checkpoints" / "best_provenance.json").write_text(json.dumps(stale))
    message = _user_error(lambda: ship_generalist(run, report, models, meta, overwrite=True))
    assert "best_provenance.json: records the fits of other weights" in message
    assert before == {p.name: file_sha256(p) for p in [*models.iterdir(), meta]}
    assert _state(models, meta) == OLD_STATE


def test_a_release_killed_at_any_write_leaves_the_old_or_the_new_release_complete(released):
    models, meta = released["models"], released["meta"]
    assert _state(models, meta) == OLD_STATE
    outcomes = []
    for kill_after in range(1, 9):
        script = (
            "import bundle.release_transaction as t; t.KILL_AFTER_WRITES = {k}; from bundle.release import "
            "ship_fold_checkpoint; ship_fold_checkpoint({new!r}, 1, {models!r}, {meta!r}, overwrite=True)"
        ).format(k=kill_after, new=str(released["new"]), models=str(models), meta=str(meta))
        proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True)
        killed = proc.returncode == -9
        recover(models)  # what any later release or inference does first
        state = _state(models, meta)
        assert state in (OLD_STATE, NEW_STATE), (kill_after, state)
        assert not (models / JOURNAL_NAME).exists()
        outcomes.append((killed, state["source"]))
        if state == NEW_STATE:  # put the old release back for the next kill point
            ship_fold_checkpoint(released["old"], 1, models, meta, overwrite=True)
    assert ("old" in {s for k, s in outcomes if k}) and ("new" in {s for k, s in outcomes if k})
    assert outcomes[-1] == (False, "new")  # more writes than a release makes: it completed


def test_the_shipped_generalist_release_ships_matching_exports(tmp_path):
    """Exports made by a release record the weights they came from, and every backend accepts them (the full
    generalist release path runs in tests/test_generalist.py)."""
    record = json.loads((REPO_ROOT / "models" / "model_provenance.json").read_text())
    for name, entry in record["exports"].items():
        assert entry["sha256"] == file_sha256(REPO_ROOT / "models" / name)
        assert entry["weights_sha256"] == record["sha256"] == file_sha256(REPO_ROOT / "models" / "model.pt")


# -- reports that do not describe what they claim ---------------------------------------------------------------


def test_gpu_report_refuses_a_run_folder_without_what_a_real_run_writes(tmp_path, capsys):
    gpu_report = load_script("gpu_report")
    out = tmp_path / "out"
    out.mkdir()
    for content, text in (
        ("{}", "field 'command' is missing"),
        ("{not json", "not valid JSON"),
        (json.dumps({"command": "c", "settings": {}, "environment": {}, "steps": {}, "seconds": 1}), "no steps"),
        (
            json.dumps(
                {"command": "c", "settings": {}, "environment": {}, "seconds": 1,
                 "steps": {"benchmark": {"ok": True, "seconds": 1, "file": "benchmark.json"}}}  # fmt: skip
            ),
            "benchmark.json: missing",
        ),
    ):
        (out / "run.json").write_text(content)
        message = _script_error(gpu_report.main, [str(out), "--docs-dir", str(tmp_path / "docs")], capsys)
        assert text in message and ".json" in message


def test_evaluation_refuses_a_run_trained_on_its_test_subjects(tiny_trained, tiny_dataset, tmp_path, capsys):
    evaluate = load_script("evaluate_generalist")
    args = ["--run", f"leaky={tiny_trained / 'checkpoints'}", "--paper-datalist", str(tiny_dataset / "datalist.json")]
    args += ["--new-anatomy-datalist", "", "--new-scanners-datalist", "", "--new-scanners-native-datalist", ""]
    args += ["--second-simulator-datalist", ""]
    args += ["--tuning-datalist", "", "--drf", "200", "--out", str(tmp_path / "report"), "--no-progress"]
    message = _script_error(evaluate.main, args, capsys)
    assert "fold isolation" in message and "run 'leaky'" in message
    assert not (tmp_path / "report" / "results.json").exists()


def test_every_case_of_the_issue_is_in_the_reliability_table():
    table = (REPO_ROOT / "docs" / "reliability.md").read_text()
    for name in [n for n in dir(sys.modules[__name__]) if n.startswith("test_") and "reliability" not in n]:
        assert name in table, f"docs/reliability.md does not list {name}"


def test_ctrl_c_during_simulation_with_workers_ends_in_one_line(tmp_path):
    import signal
    import time

    out = tmp_path / "sim"
    cmd = [sys.executable, str(REPO_ROOT / "scripts" / "simulate.py"), "--output-dir", str(out), "--subjects", "4",
           "--preset", "tiny", "--drf", "20", "--workers", "2", "--device", "cpu", "--no-progress",
           "--count-sampler", "inverse_cdf"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(out.glob("**/.*tmp*")) and not any(out.glob("sub-*")):
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole process group, workers included
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert lines[-1] == "error: interrupted"
