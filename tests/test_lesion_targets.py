"""Issue 31's lesion-uptake targets, read from synthetic evaluation records whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import load_script

from bundle.generalist.lesion_targets import lesion_summary_rows, lesion_target_rows, noise_floor_index


def _record(subject: str, drf: float, method: str, psnr: float, lesions: dict, test_set: str = "paper") -> dict:
    return {
        "subject": f"{test_set}/{subject}",
        "test_set": test_set,
        "drf": drf,
        "method": method,
        "psnr": psnr,
        "nrmse": 1.0 / psnr,
        "lesions": lesions,
    }


def _lesion(kind: str, mean: float, peak_max: float, voxels: int = 500) -> dict:
    return {
        "kind": kind,
        "suv_mean_bias_pct": mean,
        "suv_max_bias_pct": peak_max,
        "suv_peak_bias_pct": mean,
        "voxels": voxels,
    }


def _records(candidate_bias: float, candidate_psnr_gap: float) -> list[dict]:
    """9 paper subjects at DRF 200: each has a rim, a necrotic core (cold: never in the hot tables) and a small
    PET-only focus; the candidate's hot biases are `candidate_bias`, the shipped model's -10 %, the Gaussian's -9 %,
    the bilateral filter's -6 % except on two subjects."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(9):
        subject = f"sub-{k + 1:03d}"
        base = 25.0 + rng.normal(0, 0.5)
        for method, bias, psnr in (
            ("low dose", 0.5, base - 5.0),
            ("gaussian", -9.0, base - 1.0),
            ("bilateral", -6.0 if k > 1 else -30.0, base - 1.5),
            ("shipped", -10.0, base),
            ("candidate", candidate_bias, base + candidate_psnr_gap),
        ):
            lesions = {
                "1": _lesion("enhancing_rim", bias, bias / 2),
                "2": _lesion("necrotic_core", 40.0, 40.0),
                "3": _lesion("pet_only", bias, bias / 2, voxels=40),
            }
            out.append(_record(subject, 200.0, method, psnr, lesions))
    return out


def test_targets_are_met_only_where_the_measured_numbers_meet_them():
    floors = noise_floor_index(
        [
            {"test_set": "paper", "subject": f"sub-{k + 1:03d}", "drf": 200.0, "label": 3, "suv_mean_sd_pct": 2.0}
            for k in range(9)
        ]
    )
    rows = {r["target"]: r for r in lesion_target_rows(_records(-3.0, -0.1), "candidate", "shipped", floors)}
    assert rows["hot lesions: mean abs SUVmean bias <= 8 %"][""] == "met"
    assert rows["hot lesions: mean abs SUVmean bias <= 8 %"]["measured"].startswith("3.0 % (mean -3.0 %, 18 lesions)")
    assert rows["per subject: mean abs SUVmean bias below gaussian's on >= 8 of 9"]["measured"] == "9/9"
    assert rows["per subject: mean abs SUVmean bias below bilateral's on >= 8 of 9"]["measured"] == "9/9"
    small = rows["hot lesions under 100 voxels: mean bias within 2 SD of their noise floor"]
    assert small[""] == "met" and "(9 lesions; 9 each within)" in small["measured"]
    psnr = rows["PSNR no more than 0.2 dB below shipped"]
    assert psnr[""] == "met" and psnr["measured"].startswith("-0.10 dB")

    failing = {r["target"]: r for r in lesion_target_rows(_records(-7.0, -0.3), "candidate", "shipped", floors)}
    assert failing["hot lesions: mean abs SUVmean bias <= 8 %"][""] == "met"  # 7 % is inside 8 %
    assert failing["per subject: mean abs SUVmean bias below bilateral's on >= 8 of 9"]["measured"] == "2/9"
    assert failing["per subject: mean abs SUVmean bias below bilateral's on >= 8 of 9"][""] == "**not met**"
    assert failing["hot lesions under 100 voxels: mean bias within 2 SD of their noise floor"][""] == "**not met**"
    assert failing["PSNR no more than 0.2 dB below shipped"][""] == "**not met**"
    assert failing["never worse than the input"][""] == "met"


def test_summary_pairs_each_method_with_the_shipped_model():
    rows = lesion_summary_rows(_records(-4.0, 0.3), ["candidate"], "shipped")
    by_method = {r["method"]: r for r in rows}
    assert list(by_method) == ["low dose", "gaussian", "bilateral", "shipped", "candidate"]
    candidate = by_method["candidate"]
    assert candidate["PSNR - shipped"].startswith("+0.30 (+0.30 to +0.30)")
    assert candidate["abs SUVmean bias - shipped"].startswith("-6.0 (-6.0 to -6.0)")  # 4 % against 10 %
    assert (
        candidate["hot SUVmean / max / peak %"] == "-4.0 / -2.0 / -4.0" and candidate["small hot SUVmean %"] == "-4.0"
    )
    assert by_method["shipped"]["PSNR - shipped"] == "-"


def test_table_script_prints_every_runs_targets_and_refuses_an_unknown_run(tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_text(
        json.dumps({"runs": {"candidate": "x", "shipped": "y"}, "records": _records(-3.0, -0.1)}), encoding="utf-8"
    )
    table = load_script("lesion_targets_table")
    assert table.main([str(results)]) == 0
    printed = capsys.readouterr().out
    assert "## Targets: candidate" in printed and "## Targets: shipped" in printed and "## Every method" in printed
    with pytest.raises(SystemExit) as stop:
        table.main([str(results), "--runs", "nothing"])
    assert stop.value.code != 0
    assert "'nothing' is not a network" in capsys.readouterr().err
