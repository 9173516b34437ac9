"""Leave-one-out cross-validation: fold isolation, MLflow tracking in SQLite and on a real server."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import mlflow
import pytest
from helpers import REPO_ROOT, tiny_overrides

from bundle.data import loocv_split
from bundle.data.datalist import is_path_key
from bundle.errors import ConfigValueError, InputDataError
from bundle.loocv import CrossValidation

TRAIN = str(REPO_ROOT / "configs" / "train.json")
EVALUATE = str(REPO_ROOT / "configs" / "evaluate.json")


def _cv(dataset, out, **kw) -> CrossValidation:
    overrides = tiny_overrides(dataset, out)
    overrides.pop("output_dir")
    return CrossValidation([TRAIN], out, evaluate_file=EVALUATE, overrides=overrides, **kw)


def test_every_fold_keeps_its_test_subject_out(tiny_dataset):
    datalist = str(tiny_dataset / "datalist.json")
    for fold in range(4):
        split = loocv_split(datalist, fold, num_val=1)
        test = split["test_subject"]
        assert test == f"sub-{fold + 1:03d}"
        assert test not in {i["subject"] for i in split["train"] + split["val"]}
        assert len(split["train"]) == 2 and len(split["val"]) == 1


def test_fold_isolation_catches_a_renamed_copy_of_the_test_subject(tiny_dataset, tmp_path):
    content = json.loads((tiny_dataset / "datalist.json").read_text())
    for item in content["training"]:
        for key in [k for k in item if is_path_key(k)]:
            item[key] = str(tiny_dataset / item[key])
    leaked = dict(content["training"][0], subject="sub-099")  # subject 1's volumes under another name
    content["training"].append(leaked)
    path = tmp_path / "leaky.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputDataError, match="fold isolation"):
        loocv_split(str(path), fold=0, num_val=1)


def test_crossval_tracks_every_fold_in_sqlite_and_skips_completed_folds(tiny_dataset, tmp_path):
    cv = _cv(tiny_dataset, tmp_path / "cv", experiment_name="loocv-test")
    summary = cv.run()
    assert len(summary["rows"]) == 4
    assert cv.tracking_uri.startswith("sqlite:///") and (tmp_path / "cv" / "mlruns.db").is_file()
    client = mlflow.MlflowClient(cv.tracking_uri)
    exp = client.get_experiment_by_name("loocv-test")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"fold0-sub-001", "fold1-sub-002", "fold2-sub-003", "fold3-sub-004", "summary"}
    fold = runs["fold0-sub-001"]
    assert fold.info.status == "FINISHED"
    assert (
        len(fold.data.params) > 50 and fold.data.params["fold"] == "0" and fold.data.params["config.num_epochs"] == "1"
    )
    assert {
        "train_loss",
        "val_psnr",
        "val_nrmse",
        "val_ssim",
        "test_network_psnr",
        "test_low_dose_psnr",
        "test_gaussian_psnr",
    } <= set(fold.data.metrics)
    assert [m.step for m in client.get_metric_history(fold.info.run_id, "train_loss")] == [1]
    artifacts = {a.path for a in client.list_artifacts(fold.info.run_id)}
    assert {"config", "checkpoints", "metrics", "figures"} <= artifacts
    assert "network_psnr_mean" in runs["summary"].data.metrics

    # every dose level of the datalist is evaluated, logged and summarised
    result = json.loads((tmp_path / "cv" / "fold0" / "result.json").read_text())
    assert result["evaluations"] == {
        "eval": {"eval_drf": None, "drf": 200.0},
        "eval_drf20": {"eval_drf": 20.0, "drf": 20.0},
    }
    assert {"test_drf20_network_psnr", "test_drf20_gaussian_psnr", "test_drf20_network_interior_psnr"} <= set(
        fold.data.metrics
    )
    assert {"drf20_network_psnr_mean", "drf200_gaussian_psnr_mean"} <= set(runs["summary"].data.metrics)
    summary = (tmp_path / "cv" / "summary.md").read_text()
    for text in ("## Every dose level", "| 20 | network |", "| 200 | Gaussian |", "## Where in the brain, DRF 20"):
        assert text in summary, text
    assert "## Paired statistics" in summary and "| 200 | network - Gaussian |" in summary
    records = json.loads((tmp_path / "cv" / "summary_records.json").read_text())
    assert sorted((r["subject"], r["drf"], r["method"]) for r in records) == sorted(
        (f"sub-00{k}", d, m) for k in range(1, 5) for d in (20.0, 200.0) for m in ("low_dose", "gaussian", "network")
    )
    kinds = {v["kind"] for r in records for v in r["lesions"].values()}
    assert kinds and kinds <= {"enhancing_rim", "necrotic_core"}  # the legacy lesion's labels, from the datalist

    # a complete fold that lacks an evaluation gets it from its checkpoint, without training again
    checkpoint = tmp_path / "cv" / "fold1" / "checkpoints" / "best.pt"
    trained_at = checkpoint.stat().st_mtime_ns
    shutil.rmtree(tmp_path / "cv" / "fold1" / "eval_drf20")
    cv.run()
    assert (tmp_path / "cv" / "fold1" / "eval_drf20" / "records.json").is_file()
    assert checkpoint.stat().st_mtime_ns == trained_at
    assert (tmp_path / "cv" / "summary.md").read_text().count("| sub-") == 4
    # re-running redoes nothing and keeps one run per fold
    started = time.perf_counter()
    cv.run()
    assert time.perf_counter() - started < 30
    names = [r.info.run_name for r in client.search_runs([exp.experiment_id])]
    assert sorted(names) == sorted(runs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 with a SQLite backend."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root}/server.db",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    uri = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start")
    yield uri
    proc.terminate()
    proc.wait(timeout=30)


def test_one_fold_logged_over_http_to_a_real_server(tiny_dataset, tmp_path, mlflow_server):
    cv = _cv(tiny_dataset, tmp_path / "cv", tracking_uri=mlflow_server, experiment_name="server-test")
    cv.run(folds=[0], summary=False)
    client = mlflow.MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("server-test").experiment_id])
    assert [r.info.run_name for r in runs] == ["fold0-sub-001"]
    assert "test_network_psnr" in runs[0].data.metrics and runs[0].info.status == "FINISHED"


def test_two_folds_in_parallel_jobs_share_one_tracking_server(tiny_dataset, tmp_path, mlflow_server):
    overrides = tiny_overrides(tiny_dataset, tmp_path)
    overrides.pop("output_dir")
    args = [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
    jobs = [
        subprocess.Popen(
            [
                sys.executable,
                str(REPO_ROOT / "scripts" / "crossval.py"),
                "--output-dir",
                str(tmp_path / "cv"),
                "--folds",
                str(fold),
                "--no-summary",
                "--tracking-uri",
                mlflow_server,
                "--experiment-name",
                "parallel",
                *[a for pair in (("--override", x) for x in args) for a in pair],
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for fold in (1, 2)
    ]
    for job in jobs:
        out, _ = job.communicate(timeout=600)
        assert job.returncode == 0, out[-2000:]
    client = mlflow.MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("parallel").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["fold1-sub-002", "fold2-sub-003"]
    assert all(r.info.status == "FINISHED" for r in runs)


@pytest.mark.parametrize("value, message", [("0.5", "must be >= 1"), ("abc", "expected all, none or numbers")])
def test_crossval_refuses_a_bad_dose_level_in_one_line(tmp_path, value, message):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "crossval.py"),
            "--dose-levels",
            value,
            "--output-dir",
            str(tmp_path / "cv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert (
        proc.returncode == 2
        and lines[-1].startswith("error: ConfigValueError: setting --dose-levels")
        and message in lines[-1]
    )
    assert not (tmp_path / "cv").exists()  # refused before anything is written


def test_crossval_refuses_a_dose_level_the_datalist_lacks(tiny_dataset, tmp_path):
    with pytest.raises(ConfigValueError, match=r"setting dose_levels: \[50.0\] not in the datalist"):
        _cv(tiny_dataset, tmp_path / "cv", dose_levels=[50]).run([0])
    assert not list((tmp_path / "cv").glob("fold*"))  # refused before any fold trained
