"""The dose, lesion, regional and paired tables, checked against the same numbers computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bundle.metrics import paired_comparison
from bundle.quantification import (
    Records,
    dose_rows,
    evaluation_record,
    lesion_kind_rows,
    lesion_rows,
    markdown_sections,
    mean_abs_lesion_bias,
    paired_rows,
    polarity,
    regional_rows,
)

SUBJECTS = ("s1", "s2", "s3", "s4")
PSNR = {  # (drf, method) -> PSNR per subject
    (20.0, "low"): [30.0, 31.0, 29.0, 30.5],
    (20.0, "gauss"): [31.0, 31.5, 30.0, 31.0],
    (20.0, "net"): [29.0, 30.0, 30.5, 29.5],
    (200.0, "low"): [20.0, 21.0, 19.0, 20.5],
    (200.0, "gauss"): [25.0, 26.0, 24.0, 25.5],
    (200.0, "net"): [27.0, 27.5, 25.0, 26.0],
}
HOT_BIAS = {"low": [1.0, -2.0, 0.5, 3.0], "gauss": [-10.0, -12.0, -8.0, -9.0], "net": [-20.0, -15.0, -25.0, -5.0]}


def _records() -> Records:
    out = []
    for (drf, method), values in PSNR.items():
        for k, (subject, psnr) in enumerate(zip(SUBJECTS, values)):
            hot = HOT_BIAS[method][k] * (drf / 200.0)
            result = {
                "nrmse": 10 ** (-psnr / 20),
                "psnr": psnr,
                "ssim": 0.5,
                "paper_convention": {"nrmse": 0.1, "psnr": psnr + 5, "ssim": 0.9},
                "regions": {"interior": {"psnr": psnr + 1}, "edge": {"psnr": psnr - 1}},
                "lesions": {
                    "1": {"suv_mean_bias_pct": hot, "suv_max_bias_pct": 2 * hot, "reference_contrast": 0.6},
                    "2": {"suv_mean_bias_pct": 4.0, "suv_max_bias_pct": 1.0, "reference_contrast": -0.4},
                },
                "white_matter_cv": 0.3,
            }
            out.append(evaluation_record(subject, drf, method, result, {"1": "hot_nodule", "2": "cold"}))
    return Records(out)


NAMES = {"low": "low dose", "gauss": "Gaussian", "net": "network"}


def test_dose_table_gains_are_paired_means_with_bootstrap_intervals_and_counts_of_harm():
    rows = dose_rows(_records(), ["low", "gauss", "net"], "low", "gauss", NAMES)
    assert [(r["DRF"], r["method"]) for r in rows] == [
        (d, m) for d in ("20", "200") for m in ("low dose", "Gaussian", "network")
    ]
    net20 = rows[2]
    gain = paired_comparison(PSNR[(20.0, "net")], PSNR[(20.0, "low")])
    assert gain.mean_difference == pytest.approx(np.mean(PSNR[(20.0, "net")]) - np.mean(PSNR[(20.0, "low")]))
    expected = f"{gain.mean_difference:+.2f} ({gain.ci_low:+.2f} to {gain.ci_high:+.2f})"
    assert net20["PSNR gain over input, dB (95 % CI)"] == expected
    assert net20["worse than input"] == "3/4"  # worse than its input on s1, s2, s4
    assert net20["PSNR"] == pytest.approx(np.mean(PSNR[(20.0, "net")]))
    ratio = np.mean([10 ** ((a - b) / 20) for a, b in zip(PSNR[(20.0, "low")], PSNR[(20.0, "net")])])
    assert net20["NRMSE / input"] == pytest.approx(ratio)
    assert rows[0]["PSNR gain over input, dB (95 % CI)"] == "" and rows[1]["over Gaussian, dB (95 % CI)"] == ""


def test_lesion_tables_split_hot_and_cold_by_the_reference_contrast_and_report_the_worst_lesion():
    records = _records()
    assert polarity({"reference_contrast": 0.2}) == "hot" and polarity({"reference_contrast": -0.1}) == "cold"
    assert polarity({"reference_contrast": math.nan}) == "unknown"
    hot = {(r["DRF"], r["method"]): r for r in lesion_rows(records, ["low", "gauss", "net"], "hot", NAMES)}
    net = hot[("200", "network")]
    assert net["lesions"] == 4 and net["SUVmean bias %"] == pytest.approx(np.mean(HOT_BIAS["net"]))
    assert net["worst SUVmean %"] == -25.0 and net["worst SUVmax %"] == -50.0
    assert hot[("20", "network")]["SUVmean bias %"] == pytest.approx(np.mean(HOT_BIAS["net"]) / 10)
    cold = lesion_rows(records, ["net"], "cold", NAMES)
    assert [r["SUVmean bias %"] for r in cold] == [4.0, 4.0] and all(r["lesions"] == 4 for r in cold)
    kinds = lesion_kind_rows(records, ["gauss", "net"], 200.0, NAMES)
    assert [(r["kind"], r["method"]) for r in kinds] == [
        ("cold", "Gaussian"),
        ("cold", "network"),
        ("hot_nodule", "Gaussian"),
        ("hot_nodule", "network"),
    ]


def test_paired_rows_and_regional_rows_by_hand():
    records = _records()
    rows = {(r["DRF"], r["comparison"]): r for r in paired_rows(records, "net", ["low", "gauss"], NAMES)}
    row = rows[("200", "network - Gaussian")]
    c = paired_comparison(PSNR[(200.0, "net")], PSNR[(200.0, "gauss")])
    assert row["better on"] == f"{c.wins}/4" == "4/4" and row["sign test p"] == pytest.approx(c.sign_test_p)
    lesion = paired_comparison(np.abs(HOT_BIAS["net"]), np.abs(HOT_BIAS["gauss"]))
    text = f"{lesion.mean_difference:+.1f} ({lesion.ci_low:+.1f} to {lesion.ci_high:+.1f})"
    assert row["hot-lesion abs SUVmean bias, % points (95 % CI)"] == text
    get = mean_abs_lesion_bias()
    assert get(records.of(200.0, "net")["s3"]) == 25.0
    regional = {r["method"]: r for r in regional_rows(records, ["gauss", "net"], 200.0, NAMES)}
    assert regional["network"]["interior"] == pytest.approx(np.mean(PSNR[(200.0, "net")]) + 1)
    assert regional["network"]["paper convention"] == pytest.approx(np.mean(PSNR[(200.0, "net")]) + 5)
    lines = markdown_sections(records, ["low", "gauss", "net"], "low", "gauss", "net", NAMES, [200.0])
    text = "\n".join(lines)
    for heading in ("Every dose level", "hot lesions", "cold lesions", "by kind at DRF 200", "Where in the brain"):
        assert heading in text, heading


def _plain(subject: str, drf: float, method: str, psnr: float, **extra) -> dict:
    record = {"subject": subject, "drf": drf, "method": method, "psnr": psnr, "nrmse": 10 ** (-psnr / 20)}
    return {**record, "ssim": 0.5, **extra}


def test_records_pair_only_records_scored_on_the_same_data():
    fresh = [_plain(s, 20.0, "low", 30.0 + k) for k, s in enumerate(SUBJECTS)]
    fresh += [_plain(s, 20.0, "net", 32.0 + k) for k, s in enumerate(SUBJECTS)]
    other = "earlier.json"
    # a reused method on other data (s1-s3) and on the same data (s4), with the stored input of that other data
    reused = [_plain(s, 20.0, "nlm", 31.0 + k, data=other) for k, s in enumerate(SUBJECTS[:3])]
    reused.append(_plain("s4", 20.0, "nlm", 33.5))
    reused += [_plain(s, 20.0, "low", 29.0 + k, data=other) for k, s in enumerate(SUBJECTS[:3])]
    reused += [_plain(s, 20.0, "net", 35.0 + k, data=other, pairing_only=True) for k, s in enumerate(SUBJECTS[:3])]
    table = Records(fresh + reused)
    # shown: this run's input and network, the reused NLM; the other data's input and network only pair
    assert [r["psnr"] for r in table.of(20.0, "low").values()] == [30.0, 31.0, 32.0, 33.0]
    assert [r["psnr"] for r in table.of(20.0, "net").values()] == [32.0, 33.0, 34.0, 35.0]
    nlm_gain = table.paired(20.0, "nlm", "low", lambda r: r["psnr"])
    assert nlm_gain.mean_difference == pytest.approx(np.mean([2.0, 2.0, 2.0, 0.5]))  # s4 pairs with this run's input
    net_vs_nlm = table.paired(20.0, "net", "nlm", lambda r: r["psnr"])
    assert net_vs_nlm.mean_difference == pytest.approx(np.mean([4.0, 4.0, 4.0, 1.5]))  # s1-s3: the stored network
    rows = dose_rows(table, ["low", "net", "nlm"], "low", "net", {})
    nlm = next(r for r in rows if r["method"] == "nlm")
    assert nlm["worse than input"] == "0/4" and nlm["PSNR"] == pytest.approx(np.mean([31.0, 32.0, 33.0, 33.5]))
    # no record of the same data: no pair
    assert table.pair(20.0, "nlm", "net", "s9") is None
    lonely = Records([_plain("s1", 20.0, "a", 1.0, data=other), _plain("s1", 20.0, "b", 2.0)])
    assert lonely.pair(20.0, "a", "b", "s1") is None


def test_merge_reused_tags_records_of_other_data_and_keeps_their_partners():
    from bundle.paper.reused_records import merge_reused

    fresh = [_plain("s1", 20.0, "low dose", 30.0), _plain("s2", 20.0, "low dose", 31.0)]
    fresh += [_plain("s1", 20.0, "proposed", 33.0), _plain("s2", 20.0, "proposed", 34.0)]
    stored = [_plain("s1", 20.0, "low dose", 30.0), _plain("s2", 20.0, "low dose", 31.2)]  # s2: other noise
    stored += [_plain(s, 20.0, m, v) for s, m, v in [("s1", "NLM", 31), ("s2", "NLM", 32), ("s2", "proposed", 35)]]
    stored.append(_plain("s1", 20.0, "proposed", 33.0))
    merged = merge_reused(fresh, stored, ["NLM"], "old.json")
    added = merged[len(fresh) :]
    assert [(r["subject"], r["method"], r.get("data"), r.get("pairing_only")) for r in added] == [
        ("s2", "low dose", "old.json", True),
        ("s1", "NLM", None, None),  # same input: the stored NLM pairs with this run's records
        ("s2", "NLM", "old.json", None),
        ("s2", "proposed", "old.json", True),
    ]
    table = Records(merged)
    assert table.paired(20.0, "proposed", "NLM", lambda r: r["psnr"]).mean_difference == pytest.approx(2.5)


def test_lesions_are_hot_or_cold_by_their_kind_and_small_hot_lesions_get_their_own_rows():
    from bundle.quantification.records import KIND_POLARITY, SMALL_LESION_VOXELS

    # a necrotic core brightened by its rim's spill-in is still cold; an unknown kind falls back to the contrast
    assert polarity({"kind": "necrotic_core", "reference_contrast": 0.3}) == "cold"
    assert polarity({"kind": "enhancing_rim", "reference_contrast": -0.1}) == "hot"
    assert polarity({"kind": "lesion", "reference_contrast": -0.1}) == "cold"
    assert {KIND_POLARITY[k] for k in ("hot_nodule", "pet_only", "ring_enhancing")} == {"hot"}
    records = []
    for subject, small_bias in (("s1", -30.0), ("s2", -10.0)):
        result = {
            "nrmse": 0.1,
            "psnr": 30.0,
            "ssim": 0.9,
            "paper_convention": {"nrmse": 0.1, "psnr": 35.0, "ssim": 0.9},
            "regions": {},
            "lesions": {
                "1": {"suv_mean_bias_pct": small_bias, "suv_max_bias_pct": 0.0, "voxels": SMALL_LESION_VOXELS - 1},
                "2": {"suv_mean_bias_pct": -2.0, "suv_max_bias_pct": 0.0, "voxels": 900},
                "3": {"suv_mean_bias_pct": 40.0, "suv_max_bias_pct": 0.0, "voxels": 50, "reference_contrast": 0.5},
            },
        }
        kinds = {"1": "pet_only", "2": "enhancing_rim", "3": "necrotic_core"}
        records.append(evaluation_record(subject, 200.0, "net", result, kinds))
    table = Records(records)
    small = lesion_rows(table, ["net"], "hot", NAMES, small=True)
    assert small[0]["lesions"] == 2 and small[0]["SUVmean bias %"] == pytest.approx(-20.0)
    assert lesion_rows(table, ["net"], "hot", NAMES, small=False)[0]["SUVmean bias %"] == pytest.approx(-2.0)
    assert lesion_rows(table, ["net"], "cold", NAMES)[0]["SUVmean bias %"] == pytest.approx(40.0)
    text = "\n".join(markdown_sections(table, ["net"], "net", "net", "net", NAMES, [200.0]))
    assert f"hot lesions under {SMALL_LESION_VOXELS} voxels" in text


def test_code_error_curve_pairs_each_wrong_code_with_the_true_one_and_skips_codes_outside_the_trained_range(
    tiny_dataset,
):
    import re

    from bundle.generalist.code_sensitivity import (
        code_error_markdown,
        code_error_records,
        code_error_rows,
        estimated_code_rows,
    )
    from bundle.io import load_ras_volume

    def denoise(path: str, given: float) -> np.ndarray:  # a stand-in model: exact at its true code, worse off it
        true = float(re.search(r"drf(\d+)", path).group(1))
        return load_ras_volume(path) * (1.0 + 0.05 * abs(np.log2(given / true)))

    datalist = str(tiny_dataset / "datalist.json")
    records = code_error_records({"tiny": datalist}, [20.0, 200.0], [-1.0, 0.0, 1.0], denoise, (2.0, 200.0))
    subjects = {r["subject"] for r in records}
    assert not [r for r in records if r["given_drf"] > 200.0]  # DRF 200 x 2 is refused, so not run
    assert len(records) == len(subjects) * (3 + 2)
    rows = {(r["DRF"], r["log2 code error"]): r for r in code_error_rows(records, "tiny")}
    assert rows[("20", "+0")]["change vs true code, dB (95 % CI)"] == ""
    for key in (("20", "-1"), ("20", "+1"), ("200", "-1")):
        assert rows[key]["change vs true code, dB (95 % CI)"].startswith("-")  # a wrong code costs PSNR here
    assert "## tiny" in code_error_markdown(records, ["# header"], None)
    # the code inference reads from the image ('auto'), here always 2x too high: against the true and the best code
    given: dict[str, float] = {}

    def estimating(path: str, drf: float | str) -> np.ndarray:
        true = float(re.search(r"drf(\d+)", path).group(1))
        given[path] = 2.0 * true if drf == "auto" else float(drf)
        return denoise(path, given[path])

    records = code_error_records(
        {"tiny": datalist}, [20.0], [-1.0, 0.0, 1.0], estimating, (2.0, 200.0), [20.0, 200.0], given.__getitem__
    )
    estimated = [r for r in records if r["code"] == "estimated"]
    assert len(estimated) == 2 * len(subjects) and {r["log2_error"] for r in estimated} == {1.0}
    row20, row200 = estimated_code_rows(records, "tiny")
    assert (
        row20["vs true code, dB (95 % CI)"].startswith("-") and row20["vs best grid code in hindsight: mean, worst, dB"]
    )
    assert row200["vs true code, dB (95 % CI)"] == ""  # no fixed codes were run at DRF 200
    assert "The code inference chooses" in code_error_markdown(records, ["# header"], None)


def test_two_networks_code_error_curves_are_paired_at_the_same_code_and_against_the_reference_given_the_truth(
    tiny_dataset,
):
    import re

    from bundle.data import at_dose, load_datalist
    from bundle.generalist.code_sensitivity import code_error_markdown, code_error_records, weights_comparison_rows
    from bundle.io import load_ras_volume
    from bundle.metrics import masked_psnr
    from bundle.quantification.references import SubjectReferences

    def network(tolerance: float):
        def denoise(path: str, given: float) -> np.ndarray:  # blends toward the input the further its code is off
            true = float(re.search(r"drf(\d+)", path).group(1))
            item = [i for i in load_datalist(str(tiny_dataset / "datalist.json")) if i["subject"] in path][0]
            full, low = load_ras_volume(item["label"]), load_ras_volume(path)
            off = min(1.0, abs(np.log2(given / true)) / tolerance)
            return (1 - off) * full + off * low

        return denoise

    datalist = str(tiny_dataset / "datalist.json")
    records = []
    for name, tolerance in (("sharp", 1.0), ("tolerant", 4.0)):
        found = code_error_records({"tiny": datalist}, [20.0], [-1.0, 0.0, 1.0], network(tolerance), (2.0, 200.0))
        records += [{**r, "weights": name} for r in found]
    rows = {r["log2 code error"]: r for r in weights_comparison_rows(records, "tiny", "sharp", "tolerant")}
    assert set(rows) == {"-1", "+0", "+1"}
    same = "tolerant - sharp, same code, dB (95 % CI)"
    truth = "tolerant - sharp given the true code, dB (95 % CI)"
    assert rows["+1"][same].startswith("+") and rows["-1"][same].startswith("+")  # more tolerant off the code
    assert rows["+1"][truth].startswith("-")  # yet below the sharp network given the truth
    # the paired mean is the mean of per-study differences, checked against a direct computation
    item = load_datalist(datalist)[0]
    references = SubjectReferences(item)
    low = str(at_dose([item], 20.0)[0]["image"])
    direct = masked_psnr(network(4.0)(low, 40.0), references.full, references.mask) - masked_psnr(
        network(1.0)(low, 40.0), references.full, references.mask
    )
    mine = [r for r in records if r["subject"] == item["subject"] and r["log2_error"] == 1.0]
    by_name = {r["weights"]: r["psnr"] for r in mine}
    assert by_name["tolerant"] - by_name["sharp"] == pytest.approx(direct)
    text = code_error_markdown(records, ["# header"], None)
    assert "## sharp: tiny" in text and "## tolerant: tiny" in text and "## tolerant against sharp: tiny" in text


def test_code_error_script_takes_named_networks_and_refuses_an_estimator_fitted_on_another_cohort(tmp_path):
    import json

    from helpers import REPO_ROOT, load_script

    from bundle.errors import ConfigValueError

    script = load_script("dose_code_sensitivity")
    assert script._named_weights(["models/model.pt"]) == {"models/model.pt": "models/model.pt"}
    assert script._named_weights(["a=x.pt", "b=y"]) == {"a": "x.pt", "b": "y"}
    with pytest.raises(ConfigValueError, match="setting weights: expected NAME=SOURCE"):
        script._named_weights(["x.pt", "y.pt"])
    with pytest.raises(ConfigValueError, match="each name once"):
        script._named_weights(["a=x.pt", "a=y.pt"])
    record = tmp_path / "estimator.json"
    with pytest.raises(ConfigValueError, match="does not exist"):
        script._estimator_for(str(REPO_ROOT / "models" / "model.pt"), str(record))
    record.write_text(json.dumps({"weights": "estimator.pt", "calibration": {"cohort": "data/cohorts/other.json"}}))
    with pytest.raises(ConfigValueError, match="is not calibrated on .*model.pt's training cohort"):
        script._estimator_for(str(REPO_ROOT / "models" / "model.pt"), str(record))
