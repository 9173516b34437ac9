"""Reproducing the paper: baselines through the evaluation path, tuning without the test subject, every ablation
override, and the report generator end to end on a tiny study."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import sys

import numpy as np
import pytest
import torch
from helpers import REPO_ROOT, tiny_overrides, user_error_line
from monai.bundle import ConfigParser, ConfigWorkflow

from bundle.baselines import available_baselines, make_baseline
from bundle.baselines.per_fold import apply_leave_one_out
from bundle.baselines.tuning import load_cases, score_grid, select_parameters
from bundle.data import load_datalist
from bundle.errors import ConfigValueError
from bundle.paper.ablations import ABLATIONS, Protocol
from bundle.paper.claims import ablation_claims, verdict
from bundle.paper.claims_report import rewrite_claims
from bundle.paper.reproduce import PaperReproduction

TRAIN = str(REPO_ROOT / "configs" / "train.json")
EVALUATE = str(REPO_ROOT / "configs" / "evaluate.json")
ACNET = str(REPO_ROOT / "configs" / "variants" / "acnet.json")
ACNET_PET_ONLY = str(REPO_ROOT / "configs" / "variants" / "acnet_pet_only.json")


def test_every_baseline_runs_through_the_evaluation_path_and_improves_the_input(tiny_dataset, tmp_path):
    methods = [m for m in ("gaussian", "nlm", "bm3d") if m in available_baselines()]
    if importlib.util.find_spec("bm3d") is not None:
        assert "bm3d" in methods  # the optional baseline is used whenever its package is installed
    train = ConfigWorkflow(
        config_file=TRAIN, workflow_type=None, logging_file=False, **tiny_overrides(tiny_dataset, tmp_path)
    )
    train.initialize()
    train.run()
    wf = ConfigWorkflow(
        config_file=[TRAIN, EVALUATE],
        workflow_type=None,
        logging_file=False,
        **tiny_overrides(tiny_dataset, tmp_path, baselines=methods, baseline_tuning_slices=2),
    )
    wf.initialize()
    row = wf.run()[-1][0]
    for method in methods:
        assert row[f"{method}_psnr"] > row["low_dose_psnr"] + 1.0, (method, row)
        assert row[f"{method}_nrmse"] < row["low_dose_nrmse"]
    with open(tmp_path / "eval" / "metrics_per_subject.csv") as fh:
        header = next(csv.reader(fh))
    assert all(f"{m}_ssim" in header for m in methods)


def test_tuning_never_looks_at_the_test_subject(tiny_dataset, tmp_path):
    from bundle.baselines.gaussian import GaussianFilter

    cases = load_cases(load_datalist(tiny_dataset / "datalist.json"))
    method = GaussianFilter()
    scores = score_grid(method, method.default_grid, cases)
    train = [1, 2, 3]
    chosen = select_parameters(scores, method.default_grid, train)
    rigged = scores.copy()
    rigged[:, 0] = 0.0
    rigged[0, 0] = 1e9  # the test subject "prefers" the first setting overwhelmingly
    assert select_parameters(rigged, method.default_grid, train) == chosen
    preds = apply_leave_one_out(tiny_dataset / "datalist.json", tmp_path / "baselines", ["gaussian"])
    record = json.loads((tmp_path / "baselines" / "gaussian" / "sub-002_gaussian.json").read_text())
    assert "sub-002" not in record["tuned_on"] and len(record["tuned_on"]) == 3
    assert set(preds["gaussian"]) == {"sub-001", "sub-002", "sub-003", "sub-004"}


@pytest.mark.parametrize("package", ["bm3d", "bm4d"])
def test_bm3d_and_bm4d_are_optional(monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # as if the package were not installed
    monkeypatch.delitem(sys.modules, f"bundle.baselines.{package}_filter", raising=False)
    assert package not in available_baselines() and {"gaussian", "nlm"} <= set(available_baselines())
    assert "optional extra" in user_error_line(lambda: make_baseline(package))


@pytest.mark.parametrize("study, variant", [(s, v) for s, vs in ABLATIONS.items() for v in vs])
def test_every_ablation_override_builds_and_trains_one_step(study, variant):
    parser = ConfigParser()
    parser.read_config(TRAIN)
    parser.update({**ABLATIONS[study][variant], "base_features": 4, "precision": "fp32", "channels_last": False})
    net = parser.get_parsed_content("network")
    loss_fn = parser.get_parsed_content("loss")
    optimizer = parser.get_parsed_content("optimizer")
    channels = parser.get_parsed_content("num_slices")
    x = torch.rand(2, channels, 48, 48)
    # a target that resembles the input (as full dose resembles low dose): SSIM-type losses clamp the contrast term of
    # unrelated images to zero, which leaves no gradient
    y = x[:, channels // 2 : channels // 2 + 1] + 0.1 * torch.rand(2, 1, 48, 48)
    before = [p.detach().clone() for p in net.parameters()]
    loss = loss_fn(net.train()(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize(
    "variant_files, channels", [([ACNET], 2), ([ACNET, ACNET_PET_ONLY], 1)], ids=["pet+t1", "pet-only"]
)
def test_acnet_variant_trains_one_step_with_deep_supervision(variant_files, channels):
    parser = ConfigParser()
    parser.read_config([TRAIN, *variant_files])
    parser.update({"network_def#features": 8, "precision": "fp32", "channels_last": False})
    net, loss_fn = parser.get_parsed_content("network"), parser.get_parsed_content("loss")
    assert net.in_channels == channels
    x = torch.rand(2, channels, 40, 40)
    outputs = net.train()(x)
    assert isinstance(outputs, list) and len(outputs) == 3
    loss_fn(outputs, torch.rand(2, 1, 40, 40)).backward()


def _tiny_study(dataset, tmp_path, **settings) -> PaperReproduction:
    """A paper study of the tiny dataset, with its runs and report under `tmp_path`."""
    overrides = tiny_overrides(dataset, tmp_path)
    overrides.pop("output_dir")
    return PaperReproduction(
        runs_dir=tmp_path / "runs", out_dir=tmp_path / "results", config_files=[TRAIN], overrides=overrides, **settings
    )


def test_report_generator_runs_end_to_end_on_a_tiny_study(tiny_dataset, tmp_path):
    study = _tiny_study(
        tiny_dataset,
        tmp_path,
        baselines=["gaussian", "nlm"],
        acnet_files=(ACNET,),
        acnet_overrides={"network_def#features": 8},
        protocol=Protocol("tiny", folds=(0,), num_epochs=1, description="tiny test protocol"),
        variants={
            "skip_connections": ABLATIONS["skip_connections"],
            "input_slices": {k: ABLATIONS["input_slices"][k] for k in ("1 slice", "3 slices")},
            "depth": {k: ABLATIONS["depth"][k] for k in ("np=2, nc=1", "np=3, nc=2")},
            "loss": {k: ABLATIONS["loss"][k] for k in ("L1", "L2")},
        },
        timing=False,
        command="pytest tiny report",
        evaluate_file=EVALUATE,
        folds=(0, 2),
    )
    report = study.run()
    readme = report.read_text()
    assert "[ablations.md](ablations.md), from this run" in readme and "### depth" not in readme
    text = readme + (tmp_path / "results" / "ablations.md").read_text()
    assert "pytest tiny report" in text
    assert "gaussian tuned parameters per test subject: sub-001: {" in text
    for heading in (
        "Comparison with other methods",
        "Representative slices",
        "The paper's claims",
        "skip connections",
        "input slices",
        "depth",
        "loss",
        "Only residual and concatenate skips together are clearly better",
        "L1 versus L2",
        "np = 3, nc = 2 is at or near the best",
    ):
        assert heading in text, heading
    assert "proposed beats AC-Net on mean PSNR, NRMSE and SSIM" in text and "PSNR " in text
    assert "input slices: not evaluated" in text  # 5 and 7 slices were not run in this tiny study
    for method in ("Gaussian", "NLM", "AC-Net", "proposed"):
        assert f"| {method} |" in text
    figures = {p.name for p in (tmp_path / "results").glob("*.png")}
    assert {
        "fig4_boxplots.png",
        "fig5_per_subject.png",
        "fig678_slice_A_images.png",
        "fig678_slice_A_zoom.png",
        "fig678_slice_A_errors.png",
        "fig9_skip_connection_curves.png",
        "ablation_depth.png",
    } <= figures
    # the variant equal to the proposed config appears in every study but is trained once, in a shared folder
    folders = {p.name for p in (tmp_path / "runs" / "ablations").iterdir()}
    assert "proposed" in folders and not any(f.endswith(("r_c_both", "3_slices", "np_3_nc_2", "l1")) for f in folders)
    assert len(folders) == 1 + 3 + 1 + 1 + 1
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    # a reduced comparison (folds 0 and 2) scores exactly those folds' test subjects, for every method, and says so
    assert "Reduced comparison" in text and "not all 4;" in text
    for method in ("low dose", "Gaussian", "NLM", "AC-Net", "proposed"):
        assert set(results["scores"][method]) == {"sub-001", "sub-003"}, method
    assert sorted(p.name for p in (tmp_path / "runs" / "baselines" / "nlm").glob("*.nii.gz")) == [
        "sub-001_nlm.nii.gz",
        "sub-003_nlm.nii.gz",
    ]
    assert np.isfinite(results["scores"]["proposed"]["sub-001"]["psnr"])
    # every method at every dose level, each baseline tuned per dose level; paired intervals behind the claims
    scored = {(r["drf"], r["method"], r["subject"]) for r in results["records"]}
    methods = ("low dose", "Gaussian", "NLM", "AC-Net", "proposed")
    assert scored == {(d, m, s) for d in (20.0, 200.0) for m in methods for s in ("sub-001", "sub-003")}
    assert sorted(p.name for p in (tmp_path / "runs" / "baselines" / "drf20" / "nlm").glob("*.nii.gz")) == [
        "sub-001_nlm.nii.gz",
        "sub-003_nlm.nii.gz",
    ]
    assert "## Every dose level, lesion uptake and brain regions" in text and "dose_levels.png" in figures
    assert "| 20 | proposed |" in text and "| 20 | proposed - BM3D |" not in text
    assert "Proposed beats Gaussian on every subject" in text and "paired PSNR difference" in text

    # a study assembled from parts: the networks' records reused from this report, nothing trained again, and NLM
    # reused where the file holds it (DRF 200) but run where it does not (DRF 20)
    partial = dict(results, records=[r for r in results["records"] if (r["method"], r["drf"]) != ("NLM", 20.0)])
    (tmp_path / "partial.json").write_text(json.dumps(partial))
    shutil.copytree(tmp_path / "results", tmp_path / "again" / "results")  # the report folder the parts came from
    again = _tiny_study(
        tiny_dataset,
        tmp_path / "again",
        baselines=["gaussian", "nlm"],
        acnet_files=(ACNET,),
        timing=False,
        studies=[],
        evaluate_file=EVALUATE,
        folds=(0, 2),
        reuse_records=tmp_path / "partial.json",
        reuse_methods=["proposed", "AC-Net", "NLM"],
    )
    again_text = again.run().read_text()
    runs = tmp_path / "again" / "runs"
    assert not list(runs.glob("*/fold*")), "a reused method was trained again"
    assert not (runs / "baselines" / "nlm").exists(), "NLM was run again at a reused dose level"
    assert len(list((runs / "baselines" / "drf20" / "nlm").glob("*.nii.gz"))) == 2  # the level the file lacked
    assert "Reused, not rerun here:** proposed (DRF 20, 200), AC-Net (DRF 20, 200), NLM (DRF 200)" in again_text
    again_results = json.loads((tmp_path / "again" / "results" / "results.json").read_text())
    assert again_results["scores"]["proposed"] == results["scores"]["proposed"]
    assert again_results["scores"]["Gaussian"] == results["scores"]["Gaussian"]  # rerun, same numbers
    nlm_again = {(r["drf"], r["subject"]): r["psnr"] for r in again_results["records"] if r["method"] == "NLM"}
    nlm_before = {(r["drf"], r["subject"]): r["psnr"] for r in results["records"] if r["method"] == "NLM"}
    assert nlm_again == pytest.approx(nlm_before)  # rerun at DRF 20 with the same tuning: the same numbers
    # the reused methods' predictions are not here, so the slice section (and its figures) is kept, with a note
    slices = again_text.split("## Representative slices")[1].split("\n## ")[0]
    assert "Carried over unchanged from the report of `pytest tiny report`" in slices and "| A (sub-" in slices
    assert "[ablations.md](ablations.md) holds the last" in again_text


def test_reproduction_refuses_folds_out_of_range(tiny_dataset, tmp_path):
    study = _tiny_study(
        tiny_dataset,
        tmp_path,
        baselines=["gaussian"],
        acnet_files=(),
        timing=False,
        folds=(0, 9),
    )
    with pytest.raises(ConfigValueError, match="setting folds: \\[9\\] out of range"):
        study.run()
    assert not list((tmp_path / "runs").glob("loocv/fold*"))  # refused before any fold ran


def _fake_study(means: dict[str, float]) -> dict[str, list[dict]]:
    return {v: [{"fold": 0, "metrics": {"network_psnr": p, "low_dose_psnr": 20.0}}] for v, p in means.items()}


def test_ablation_verdicts_below_the_seed_spread_are_marked_not_resolved():
    ablations = {
        "repeatability": _fake_study({"seed 0": 28.0, "seed 1": 28.5, "seed 2": 28.2}),
        "input_slices": _fake_study({"1 slice": 27.0, "3 slices": 28.0, "5 slices": 28.1, "7 slices": 28.0}),
        "loss": _fake_study({"L1": 28.0, "L2": 27.8}),
    }
    lines = ablation_claims(ablations)
    assert "spans 0.50 dB" in lines[0]
    slices = next(x for x in lines if x.startswith("- 3 slices"))
    loss = next(x for x in lines if x.startswith("- L1 versus L2"))
    assert "**holds**" in slices and "not resolved" not in slices  # 1.0 dB margin > 0.5 dB spread
    # a 0.20 dB margin below the 0.5 dB spread gives no winner, only "not resolved"
    assert "**not resolved**" in loss and "better" not in loss and "margin of 0.20 dB" in loss
    # without a repeatability study there is no spread and no qualifier
    del ablations["repeatability"]
    assert not any("not resolved" in x for x in ablation_claims(ablations))


def test_baseline_tuning_scores_persist_and_a_changed_grid_retunes(tiny_dataset, tmp_path, monkeypatch):
    from bundle.baselines import tuning
    from bundle.baselines.gaussian import GaussianFilter

    out = tmp_path / "baselines"
    apply_leave_one_out(tiny_dataset / "datalist.json", out, ["gaussian"], test_subjects=["sub-001"])
    cache = json.loads((out / "gaussian" / "tuning_scores.json").read_text())
    assert len(cache) == len(GaussianFilter.default_grid) * 4  # every grid point on every subject
    record = json.loads((out / "gaussian" / "sub-001_gaussian.json").read_text())
    assert record["grid"] == GaussianFilter.default_grid and "at_grid_edge" in record

    # a new process (empty memo) reuses the stored scores instead of filtering again
    monkeypatch.setattr(tuning, "_SCORES", {})
    calls = []
    monkeypatch.setattr(GaussianFilter, "__call__", lambda self, *a, **k: calls.append(k) or a[0])
    grid = [{"fwhm_mm": f, "axial_fwhm_mm": 0.0} for f in (2.0, 4.0, 6.0)]  # a subset: all scored already
    monkeypatch.setattr(GaussianFilter, "default_grid", grid)
    apply_leave_one_out(tiny_dataset / "datalist.json", out, ["gaussian"], test_subjects=["sub-001"])
    record = json.loads((out / "gaussian" / "sub-001_gaussian.json").read_text())
    assert record["grid"] == grid  # the grid changed, so the prediction was tuned again ...
    assert len(calls) == 1  # ... from cached scores: the only filtering is the test subject's prediction


def test_grid_edge_keys_flags_a_choice_at_the_end_of_a_grid():
    from bundle.baselines.tuning import grid_edge_keys

    grid = [{"sigma": s, "patch": p} for s in (0.1, 0.2, 0.4) for p in (5, 7)]
    assert grid_edge_keys({"sigma": 0.4, "patch": 7}, grid) == ["sigma"]  # patch has only two values
    assert grid_edge_keys({"sigma": 0.2, "patch": 5}, grid) == []


def test_claims_give_one_verdict_and_only_not_resolved_below_the_seed_spread():
    seeds = _fake_study({"seed 0": 26.0, "seed 1": 26.5})  # spread 0.5 dB
    close = {"1 slice": 25.8, "3 slices": 26.1, "5 slices": 26.2, "7 slices": 26.2}  # 3 - 1 = 0.3 dB < 0.5
    clear = {"1 slice": 24.0, "3 slices": 26.1, "5 slices": 26.2, "7 slices": 26.2}  # 2.1 dB > 0.5
    worse = {"1 slice": 27.0, "3 slices": 26.1, "5 slices": 26.2, "7 slices": 26.2}  # -0.9 dB
    for slices, expected in ((close, "not resolved"), (clear, "holds"), (worse, "does not hold")):
        (line,) = [
            x for x in ablation_claims({"repeatability": seeds, "input_slices": _fake_study(slices)}) if "3 slices" in x
        ]
        verdicts = [v for v in ("not resolved", "does not hold", "holds") if f"**{v}**" in line]
        assert verdicts == [expected], line
    assert verdict(True, 0.1, 0.5) == "not resolved" and verdict(False, -0.6, 0.5) == "does not hold"
    assert verdict(True) == "holds"  # no repeatability study: no resolution limit


def test_rewrite_claims_recomputes_the_section_from_results_json(tmp_path):
    scores = {
        m: {"s1": {"nrmse": n, "psnr": p, "ssim": q}}
        for m, n, p, q in (("low dose", 0.3, 20.0, 0.6), ("Gaussian", 0.2, 24.0, 0.7), ("proposed", 0.1, 26.0, 0.8))
    }
    (tmp_path / "results.json").write_text(json.dumps({"scores": scores, "ablations": {}}))
    (tmp_path / "README.md").write_text("# R\n\n## The paper's claims on our data\n\n- stale\n\n## Ablations\n\nkept\n")
    rewrite_claims(tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert "stale" not in text and "Proposed beats Gaussian on every subject: **holds**" in text
    assert text.endswith("## Ablations\n\nkept\n") and "**met** (+2.00 dB; one subject: no paired interval)" in text


def test_baseline_dose_levels_restrict_a_slow_baseline_and_name_bad_settings(tmp_path):
    study = PaperReproduction(
        runs_dir=tmp_path / "runs",
        out_dir=tmp_path / "results",
        config_files=[TRAIN],
        baselines=["gaussian", "bm3d"],
        baseline_dose_levels={"bm3d": [200, 20]},
    )
    assert study.baseline_runs_at("gaussian", 4.0) and study.baseline_runs_at("bm3d", 20.0)
    assert not study.baseline_runs_at("bm3d", 4.0)
    study.check_baseline_dose_levels([4.0, 20.0, 200.0])
    with pytest.raises(ValueError, match=r"bm3d at DRF \[20\]"):
        study.check_baseline_dose_levels([4.0, 200.0])
    study.baseline_dose_levels = {"nlm": [200]}
    with pytest.raises(ValueError, match="'nlm' is not among"):
        study.check_baseline_dose_levels([200.0])


def test_reused_records_must_name_a_file_that_holds_the_methods(tmp_path):
    study = PaperReproduction(
        runs_dir=tmp_path / "runs", out_dir=tmp_path / "results", config_files=[TRAIN], reuse_methods=["AC-Net"]
    )
    with pytest.raises(ConfigValueError, match="needs --reuse-records"):
        study.reused()
    stored = tmp_path / "results.json"
    stored.write_text(json.dumps({"records": [{"method": "proposed", "subject": "sub-001"}], "command": "c"}))
    study.reuse_records = stored
    with pytest.raises(ConfigValueError, match=r"\['AC-Net'\] not in"):
        study.reused()
    study.reuse_methods = ["proposed"]
    assert study.reused()["records"] == [{"method": "proposed", "subject": "sub-001"}]
    stored.write_text("[1, 2]")
    with pytest.raises(ValueError, match="has no 'records' list"):
        study.reused()
