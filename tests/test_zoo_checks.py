"""The model zoo's own checks, run offline: its CI's `verify_bundle` logic (files, version, metadata schema, network
input/output, TorchScript export of `models/model.pt` without `key_in_ckpt`), MONAI's property checker for the train
and infer workflows, `monai.bundle.load`, the zoo's code-format checks, and the bundle run from another folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import REPO_ROOT, tiny_overrides
from monai.bundle import ConfigWorkflow, ckpt_export, verify_metadata, verify_net_in_out

META = REPO_ROOT / "configs" / "metadata.json"
SCHEMA = REPO_ROOT / "tests" / "data" / "meta_schema_20240725.json"
NAME = json.loads(META.read_text())["name"]


def test_verify_bundle_directory_version_metadata_shape_and_torchscript(tmp_path):
    """What Project-MONAI/model-zoo ci/verify_bundle.py checks in its 'full' mode, without the network."""
    for required in ("configs/metadata.json", "LICENSE", "models/model.pt", "configs/inference.json"):
        assert (REPO_ROOT / required).is_file(), required
    meta = json.loads(META.read_text())
    assert meta["version"] in meta["changelog"]
    verify_metadata(meta_file=str(META), filepath=str(SCHEMA))
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(META),
        config_file=str(REPO_ROOT / "configs" / "inference.json"),
        bundle_root=str(REPO_ROOT),
    )
    exported = tmp_path / "verify_model.ts"
    ckpt_export(  # exactly as the zoo calls it: no key_in_ckpt, so models/model.pt must be a plain state dict
        net_id="network_def",
        filepath=str(exported),
        ckpt_file=str(REPO_ROOT / "models" / "model.pt"),
        meta_file=str(META),
        config_file=str(REPO_ROOT / "configs" / "inference.json"),
        bundle_root=str(REPO_ROOT),
    )
    extra = {"metadata.json": ""}
    shipped = torch.jit.load(str(REPO_ROOT / "models" / "model.ts"), _extra_files=extra)
    assert json.loads(extra["metadata.json"])["version"] == meta["version"]  # the shipped export is current
    x = torch.rand(1, meta["network_data_format"]["inputs"]["image"]["num_channels"], 64, 64)
    with torch.no_grad():
        np.testing.assert_allclose(torch.jit.load(str(exported))(x).numpy(), shipped(x).numpy(), atol=1e-5)


def _train_workflow(dataset, tmp_path) -> ConfigWorkflow:
    wf = ConfigWorkflow(
        config_file=str(REPO_ROOT / "configs" / "train.json"),
        workflow_type="train",
        logging_file=False,
        **tiny_overrides(dataset, tmp_path / "train"),
    )
    wf.initialize()
    return wf


def test_check_properties_finds_nothing_missing_for_train_and_infer(tiny_dataset, tmp_path):
    assert _train_workflow(tiny_dataset, tmp_path).check_properties() == []
    infer = ConfigWorkflow(
        config_file=str(REPO_ROOT / "configs" / "inference.json"),
        workflow_type="infer",
        meta_file=str(META),
        logging_file=False,
        bundle_root=str(REPO_ROOT),
    )
    infer.initialize()
    assert infer.check_properties() == []


def test_network_initialisation_is_seeded_whether_or_not_properties_were_checked_first(tiny_dataset, tmp_path):
    """The zoo and MONAI FL check properties (which builds the network) before running; the weights must not depend
    on it."""
    checked = _train_workflow(tiny_dataset, tmp_path / "a")
    checked.check_properties()
    plain = _train_workflow(tiny_dataset, tmp_path / "b")
    plain.parser.get_parsed_content("prepare")  # what `run` does first
    a, b = (wf.parser.get_parsed_content("network").state_dict() for wf in (checked, plain))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_overriding_train_dataset_data_changes_what_trains(tiny_dataset, tmp_path):
    """MONAI FL and the zoo set the training data through `train#dataset#data`."""
    wf = _train_workflow(tiny_dataset, tmp_path)
    one = wf.parser.get_parsed_content("split")["train"][:1]
    wf.train_dataset_data = one
    wf.initialize()
    assert len(wf.train_dataset) == 1 and wf.parser.get_parsed_content("train#dataset").data == one


def test_monai_bundle_load_returns_the_trained_weights(tmp_path):
    bundle_dir = tmp_path / "bundles"
    target = bundle_dir / NAME
    for part in ("configs", "models", "bundle", "LICENSE"):
        copy = shutil.copytree if (REPO_ROOT / part).is_dir() else shutil.copyfile
        copy(REPO_ROOT / part, target / part)
    net = __import__("monai.bundle", fromlist=["load"]).load(
        name=NAME, bundle_dir=str(bundle_dir), workflow_type="inference", device="cpu"
    )
    shipped = torch.load(REPO_ROOT / "models" / "model.pt", weights_only=True)
    key = next(k for k in shipped if k.endswith("weight"))
    assert torch.equal(net.state_dict()[key], shipped[key])
    assert all(torch.equal(net.state_dict()[k], v) for k, v in shipped.items())


# run `python -m monai.bundle` with the bundle's editable install hidden: only --bundle_root can make `bundle` importable
_WITHOUT_INSTALL = (
    "import runpy, sys; "
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in getattr(f, '__module__', '')]; "
    "sys.argv = ['monai.bundle', *sys.argv[1:]]; runpy.run_module('monai.bundle', run_name='__main__', alter_sys=True)"
)


def test_inference_runs_from_another_folder_with_bundle_root_and_dataset_dir(tiny_dataset, tmp_path):
    copy = tmp_path / "elsewhere" / NAME
    for part in ("configs", "models", "bundle"):
        shutil.copytree(REPO_ROOT / part, copy / part)
    inputs = tmp_path / "studies"
    inputs.mkdir()
    shutil.copyfile(tiny_dataset / "sub-001" / "sub-001_pet_drf200.nii.gz", inputs / "study.nii.gz")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    cmd = [
        sys.executable,
        "-c",
        _WITHOUT_INSTALL,
        "run",
        "--config_file",
        str(copy / "configs" / "inference.json"),
        "--bundle_root",
        str(copy),
        "--dataset_dir",
        str(inputs),
        "--output_dir",
        str(tmp_path / "out"),
        "--progress",
        "False",
        "--precision",
        "'fp32'",
        "--training_spacing",
        "[4.0, 4.0, 4.0]",
        "--drf",
        "200",  # the shipped generalist model is dose-conditioned: the studies' DRF
    ]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "1 denoised" in proc.stdout and (tmp_path / "out" / "study_denoised.nii.gz").is_file()


@pytest.mark.parametrize(
    "tool",
    [
        ["black", "--check", "--quiet", "bundle", "scripts", "tests"],
        ["isort", "--check-only", "--quiet", "bundle", "scripts", "tests"],
        ["flake8", "bundle", "scripts", "tests"],
    ],
    ids=["black", "isort", "flake8"],
)
def test_code_passes_the_zoo_format_checks(tool):
    proc = subprocess.run([sys.executable, "-m", *tool], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
