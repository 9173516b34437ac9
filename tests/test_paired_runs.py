"""Runs paired against a reference run, from synthetic evaluation records whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import load_script

from bundle.generalist.paired_runs import paired_runs_markdown, paired_runs_rows
from bundle.generalist.report import records_by_cell


def _records() -> list[dict]:
    """6 subjects of one set at DRF 2 and 200: `blind` is 0.1 dB below the input on 2 subjects at DRF 2, the shipped
    model 0.2 dB above it everywhere; hot rims biased -1 % by the shipped model and -3 % by `blind`, a necrotic core
    (cold) +40 % for both."""
    rng = np.random.default_rng(0)
    out = []
    for drf in (2.0, 200.0):
        for k in range(6):
            base = 40.0 + rng.normal(0, 1.0)
            for method, gain, bias in (
                ("low dose", 0.0, 0.0),
                ("gaussian-loo", 0.05, -5.0),
                ("shipped", 0.2, -1.0),
                ("blind", -0.1 if (drf == 2.0 and k < 2) else 0.3, -3.0),
            ):
                lesions = {
                    "1": {"kind": "enhancing_rim", "suv_mean_bias_pct": bias},
                    "2": {"kind": "necrotic_core", "suv_mean_bias_pct": 40.0},
                }
                out.append(
                    {
                        "subject": f"second-simulator/sub-{k}",
                        "test_set": "second-simulator",
                        "drf": drf,
                        "method": method,
                        "psnr": base + gain,
                        "lesions": lesions,
                    }
                )
    return out


def test_paired_rows_count_subjects_below_their_input_and_pair_against_the_reference(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"records": _records()}), encoding="utf-8")
    _, cells = records_by_cell(results)
    rows = {row["drf"]: row for row in paired_runs_rows(cells, "shipped", ["blind"])}
    low = rows[2.0]
    assert low["subjects"] == 6 and low["worse"] == {"shipped": 0, "blind": 2}
    assert low["smallest_gain"]["blind"] == pytest.approx(-0.1) and low["smallest_gain"]["shipped"] == pytest.approx(
        0.2
    )
    expected = (4 * 0.3 + 2 * -0.1) / 6 - 0.2  # blind - shipped, by hand
    assert low["versus"]["blind"].mean_difference == pytest.approx(expected)
    assert low["versus"]["blind"].ci_low <= expected <= low["versus"]["blind"].ci_high
    assert low["hot_bias"] == {"shipped": pytest.approx(-1.0), "blind": pytest.approx(-3.0)}  # the core is not hot
    assert rows[200.0]["worse"]["blind"] == 0
    table = paired_runs_markdown(list(rows.values()), "shipped", ["blind"])
    assert "| second-simulator | 2 |" in table and "0/6 / 2/6" in table and "-1.0 / -3.0 %" in table


def test_table_script_prints_the_table_and_refuses_an_unknown_run(tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"records": _records()}), encoding="utf-8")
    script = load_script("paired_runs_table")
    assert script.main([str(results), "--runs", "blind"]) == 0
    assert "| test set | DRF | input | Gaussian (LOO) | shipped | blind | blind - shipped |" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        script.main([str(results), "--runs", "nothing"])
    assert stop.value.code != 0
    assert "nothing" in capsys.readouterr().err
