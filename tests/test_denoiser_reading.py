"""A dose-blind denoiser's own reading of the noise level: its calibration, checked on records whose answer is
known, and the script end to end on a tiny trained network."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import load_script

from bundle.metrics.statistics import fit_line
from bundle.noise_estimation.denoiser_reading import calibrated_records, removed_noise_reading


def _records(offset: float = 0.0) -> list[dict]:
    """Noise grows as DRF^0.56; the reading is 1.5 x log2 noise + 2 on the fitting set, `offset` higher elsewhere."""
    out = []
    for test_set, shift in (("fit", 0.0), ("test", offset)):
        for subject in ("a", "b"):
            for drf in (2.0, 20.0, 200.0):
                measured = -7.0 + 0.56 * np.log2(drf) + (0.1 if subject == "b" else 0.0)
                reading = 1.5 * measured + 2.0 + shift
                out.append(
                    {"test_set": test_set, "subject": subject, "drf": drf, "measured_log2": measured}
                    | {"reading_log2": reading}
                )
    return out


def test_the_calibrated_reading_recovers_a_linear_reading_and_keeps_the_fitting_studies_out():
    records, calibration = calibrated_records(_records(), "fit")
    assert {r["test_set"] for r in records} == {"test"}
    assert calibration["reading"]["slope"] == pytest.approx(1 / 1.5) and calibration["dose"]["slope"] == pytest.approx(
        0.56
    )
    for r in records:
        assert r["estimated_log2"] == pytest.approx(r["measured_log2"])
        assert r["equivalent_drf_estimated"] == pytest.approx(r["equivalent_drf_measured"])
    shifted, _ = calibrated_records(_records(offset=0.75), "fit")  # a reading 0.75 higher reads 0.5 too noisy
    assert [r["estimated_log2"] - r["measured_log2"] for r in shifted] == pytest.approx([0.5] * 6)
    assert fit_line([0, 1, 2], [1, 3, 5]) == {"intercept": pytest.approx(1.0), "slope": pytest.approx(2.0)}
    with pytest.raises(ValueError, match="calibration"):
        calibrated_records(_records(), "nothing")


def test_script_reads_a_blind_network_and_refuses_a_conditioned_one(tiny_dataset, tiny_trained, tmp_path):
    from bundle.deploy.trained_denoiser import TrainedDenoiser

    run = TrainedDenoiser(tiny_trained / "checkpoints")
    reading, low, spacing = removed_noise_reading(run, str(tiny_dataset / "sub-001" / "sub-001_pet_drf200.nii.gz"))
    assert np.isfinite(reading) and low.ndim == 3 and len(spacing) == 3
    datalist = str(tiny_dataset / "datalist.json")
    script = load_script("evaluate_denoiser_reading")
    out = tmp_path / "report"
    args = ["--run", str(tiny_trained / "checkpoints"), "--fit-datalist", datalist, "--fit-subjects", "2"]
    assert script.main(args + ["--test-set", f"tiny={datalist}", "--drf", "20", "200", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["raw"]) == 2 * 2 + 4 * 2 and len(results["records"]) == 4 * 2
    assert "| tiny | 8 |" in (out / "README.md").read_text()
    run.dose_conditioned = True
    with pytest.raises(ValueError, match="dose-blind"):
        removed_noise_reading(run, str(tiny_dataset / "sub-001" / "sub-001_pet_drf200.nii.gz"))
