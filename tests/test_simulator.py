"""Simulator: operator adjointness, agreement with scikit-image, dose statistics, OSEM, determinism, output."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import run_script
from skimage.data import shepp_logan_phantom
from skimage.transform import radon, resize

from bundle.metrics import image_metrics
from bundle.simulation import SimulationConfig, simulate_dataset
from bundle.simulation.acquisition import poisson_counts, thin_counts
from bundle.simulation.osem import osem
from bundle.simulation.projector import GaussianBlur3d, ParallelBeamProjector, PETSystemModel
from bundle.simulation.subject_volumes import build_projector, simulate_subject_volumes


def _inner(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() * b.double()).sum())


@pytest.mark.parametrize("subsets", [1, 4])
def test_projector_adjoint_is_exact(subsets):
    gen = torch.Generator().manual_seed(0)
    proj = ParallelBeamProjector(48, 36, n_bins=52, pixel_size_mm=2.0, n_subsets=subsets, device="cpu")
    x = torch.rand(3, 48, 48, generator=gen)
    y = torch.rand(3, 36, 52, generator=gen)
    lhs, rhs = _inner(proj.A(x), y), _inner(x, proj.A_adjoint(y))
    assert abs(lhs - rhs) / abs(lhs) < 1e-5
    for s in range(subsets):
        ys = torch.rand(3, 36 // subsets, 52, generator=gen)
        assert (
            abs(_inner(proj.A(x, s), ys) - _inner(x, proj.A_adjoint(ys, s))) / abs(_inner(x, proj.A_adjoint(ys, s)))
            < 1e-5
        )


def test_system_model_with_blur_and_attenuation_is_adjoint():
    gen = torch.Generator().manual_seed(1)
    proj = ParallelBeamProjector(32, 28, pixel_size_mm=2.0, n_subsets=4, device="cpu")
    factors = torch.rand(5, 28, 32, generator=gen) + 0.1
    model = PETSystemModel(proj, factors, GaussianBlur3d((4.5, 4.5), (2.0, 2.0, 2.0)))
    x, y = torch.rand(5, 32, 32, generator=gen), torch.rand(5, 28, 32, generator=gen)
    lhs, rhs = _inner(model.A(x), y), _inner(x, model.A_adjoint(y))
    assert abs(lhs - rhs) / abs(lhs) < 1e-5


def test_forward_matches_skimage_radon():
    phantom = resize(shepp_logan_phantom(), (65, 65), anti_aliasing=True).astype(np.float32)
    theta = np.arange(60) * 3.0
    reference = radon(phantom, theta=theta, circle=True)  # (bins, angles)
    proj = ParallelBeamProjector(65, 60, device="cpu")
    ours = proj.A(torch.from_numpy(phantom)[None])[0].numpy().T
    assert np.linalg.norm(ours - reference) / np.linalg.norm(reference) < 0.01
    # a wrong geometry (angles reversed) is clearly detected by the same check
    assert np.linalg.norm(ours[:, ::-1] - reference) / np.linalg.norm(reference) > 0.05


def test_thinning_ratio_and_poisson_variance():
    rng = np.random.default_rng(0)
    expected = torch.full((200, 500), 400.0)
    full = poisson_counts(expected, rng)
    assert abs(float(full.var()) / float(full.mean()) - 1.0) < 0.02
    for drf in (4.0, 20.0, 200.0):
        low = thin_counts(full, drf, rng)
        assert bool((low <= full).all())
        ratio = float(low.sum() / full.sum())
        assert abs(ratio * drf - 1.0) < 0.03
        # thinned Poisson is Poisson: variance equals the mean
        assert abs(float(low.var()) / float(low.mean()) - 1.0) < 0.05


def test_osem_approaches_truth_on_noiseless_data():
    proj = ParallelBeamProjector(32, 56, pixel_size_mm=4.0, n_subsets=4, device="cpu")
    truth = torch.zeros(1, 32, 32)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    truth[0][((yy - 15.5) ** 2 + (xx - 15.5) ** 2) < 100] = 1.0
    truth[0][((yy - 12) ** 2 + (xx - 18) ** 2) < 9] = 3.0
    model = PETSystemModel(proj, torch.full((1, 56, 32), 50.0), None)
    background = torch.full((1, 56, 32), 5.0)
    data = model.A(truth) + background
    errors = [
        float(torch.linalg.norm(osem(data, model, background, it) - truth) / torch.linalg.norm(truth))
        for it in (1, 4, 16, 64)
    ]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.5 * errors[0]


def test_same_seed_same_volumes_and_different_seed_differs():
    cfg = SimulationConfig(preset="tiny", slices=6, n_subjects=1, seed=7, device="cpu")
    proj = build_projector(cfg, torch.device("cpu"))
    first, _, _ = simulate_subject_volumes(0, cfg, proj)
    again, _, _ = simulate_subject_volumes(0, cfg, proj)
    other, _, _ = simulate_subject_volumes(0, cfg.with_updates(seed=8), proj)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    assert not np.allclose(first["pet_drf200"], other["pet_drf200"])


def test_tiny_dataset_files_affines_and_datalist(tiny_dataset):
    from monai.data import load_decathlon_datalist

    datalist = json.loads((tiny_dataset / "datalist.json").read_text())
    assert datalist["numTraining"] == 4 and len({d["subject"] for d in datalist["training"]}) == 4
    manifest = json.loads((tiny_dataset / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["settings"]["preset"] == "tiny"
    items = load_decathlon_datalist(
        str(tiny_dataset / "datalist.json"), data_list_key="training", base_dir=str(tiny_dataset)
    )
    for item in items:
        images = {key: nib.load(item[key]) for key in ("image", "label", "mask", "t1", "lesion", "truth")}
        ref = images["label"]
        assert ref.shape == (64, 64, 16)
        np.testing.assert_allclose(ref.header.get_zooms()[:3], (4.0, 4.0, 4.0))
        for img in images.values():
            np.testing.assert_allclose(img.affine, ref.affine)
        lesion = np.asarray(images["lesion"].dataobj)
        assert set(np.unique(lesion)) <= {0, 1, 2}
        low, full = images["image"].get_fdata(), ref.get_fdata()
        assert np.isfinite(low).all() and full.max() > 1000  # Bq/mL
        # low dose is in the same units as full dose: the means inside the brain agree within 5 %
        brain = np.asarray(images["mask"].dataobj) > 0
        assert abs(low[brain].mean() / full[brain].mean() - 1) < 0.05


def test_rerun_skips_complete_subjects_and_overwrite_redoes(tmp_path):
    cfg = SimulationConfig(preset="tiny", slices=4, n_subjects=2, seed=1, device="cpu")
    first = simulate_dataset(tmp_path, cfg, progress=False)
    assert len(first["seconds_per_subject_this_run"]) == 2
    again = simulate_dataset(tmp_path, cfg, progress=False)
    assert again["seconds_per_subject_this_run"] == {}
    more = simulate_dataset(tmp_path, cfg.with_updates(n_subjects=3), progress=False)
    assert list(more["seconds_per_subject_this_run"]) == ["sub-003"]
    redo = simulate_dataset(tmp_path, cfg, overwrite=True, progress=False)
    assert len(redo["seconds_per_subject_this_run"]) == 2
    assert not list(tmp_path.rglob(".*tmp*"))  # no temporary files left behind


def test_calibration_of_quick_preset_on_a_slab():
    """DRF 200 against DRF 1 inside the brain: NRMSE in the paper's range on central slices of the quick preset."""
    cfg = SimulationConfig(preset="quick", slices=8, n_subjects=2, device="cpu")
    proj = build_projector(cfg, torch.device("cpu"))
    values = []
    for k in range(2):
        vols, _, _ = simulate_subject_volumes(k, cfg, proj)
        values.append(image_metrics(vols["pet_drf200"], vols["pet_full"], vols["brain_mask"] > 0))
    nrmse = np.mean([v["nrmse"] for v in values])
    assert 0.18 <= nrmse <= 0.27, values
    assert all(np.isfinite(v["psnr"]) and 0 < v["ssim"] < 1 for v in values)


@pytest.mark.parametrize(
    "args, setting",
    [
        (["--drf", "1"], "drf"),
        (["--drf", "0.5"], "drf"),
        (["--drf", "abc"], "drf"),
        (["--subjects", "0"], "n_subjects"),
        (["--counts", "-1e9"], "counts"),
        (["--preset", "huge"], "preset"),
    ],
)
def test_cli_rejects_bad_settings_in_one_line(tmp_path, repo_root, args, setting):
    proc = run_script("simulate", "--output-dir", str(tmp_path / "out"), *args)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and setting in lines[0], proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # nothing half-written


def test_cli_rejects_unwritable_output_folder(tmp_path, repo_root):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = run_script("simulate", "--output-dir", str(blocker / "data"), "--preset", "tiny")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "output folder" in lines[0] and "a_file" in lines[0], proc.stderr
