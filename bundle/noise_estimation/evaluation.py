"""How well the noise estimator reads a study's noise, on test cohorts it was not fitted on.

Each study is put on the network's grid by the shipped inference's own preprocessing (`configs/inference.json`: RAS,
`Spacing` to the training voxel size, bilinear, percentile scale), its low- and full-dose images alike; its noise is measured from the pair (`metrics.relative_noise`) and read from
the low-dose image alone (`NoiseEstimator`). The error is reported in log2 of the noise level and in log2 of the
equivalent DRF (the code the model reads, about twice the noise error since noise grows as about DRF^0.56), against
the equivalent DRF of the measured noise (the code a perfect estimator would give) and against the DRF label. The bundle-0.2 estimator
(noise-variance fit, `metrics.dose_estimation`) is measured beside it where its coefficients are given.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..data import at_dose, load_datalist
from ..errors import InputDataError
from ..metrics import paired_comparison
from ..metrics.dose_estimation import estimate_drf
from ..metrics.relative_noise import relative_noise_log2
from ..tables import format_table
from .estimator import NoiseEstimator, equivalent_drf

__all__ = [
    "TEST_SETS",
    "estimator_comparison_rows",
    "estimator_markdown",
    "estimator_records",
    "estimator_rows",
    "on_network_grid",
    "plot_estimator",
]

# the cohorts a noise reading is measured on (NAME=DATALIST; the scripts skip one not simulated)
TEST_SETS = [
    "paper=data/simulated_quick/datalist.json",
    "new-anatomy=data/cohorts/new_anatomy/datalist.json",
    "new-scanners=data/cohorts/new_scanners/datalist.json",
    "new-scanners-native=data/cohorts/new_scanners_native/datalist.json",
    "second-simulator=data/cohorts/second_simulator/datalist.json",
]


INFERENCE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "inference.json"


@lru_cache(maxsize=4)
def _inference_preprocessing(spacing: tuple[float, ...]) -> Any:
    """`configs/inference.json`'s preprocessing (loading, checks, RAS, resampling to `spacing`, scaling)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(INFERENCE_CONFIG))
    parser["bundle_root"] = str(INFERENCE_CONFIG.parents[1])
    parser["training_spacing"] = list(spacing)
    return parser.get_parsed_content("preprocessing")


def on_network_grid(path: str, spacing: Sequence[float] = (2.0, 2.0, 2.0)) -> np.ndarray:
    """The (X, Y, Z) volume of an image file as the shipped inference's preprocessing hands it to the network (RAS,
    resampled to `spacing`, over its percentile scale; the noise level is relative, so the scale does not matter)."""
    item = _inference_preprocessing(tuple(float(v) for v in spacing))({"image": str(path)})
    return np.asarray(item["image"])[0].astype(np.float32)


def estimator_records(
    test_sets: Mapping[str, str],
    drfs: Sequence[float],
    estimator: NoiseEstimator,
    legacy: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """{test_set, subject, drf, measured_log2, estimated_log2, equivalent_drf_measured, equivalent_drf_estimated,
    legacy_drf} for every study of every test set at every DRF."""
    records = []
    for name, datalist in test_sets.items():
        for item in load_datalist(datalist):
            full = on_network_grid(item["label"])
            for drf in drfs:
                low = on_network_grid(at_dose([item], float(drf))[0]["image"])
                measured = relative_noise_log2(low, full)
                estimated = estimator.noise_log2(low)
                records.append(
                    {
                        "test_set": name,
                        "subject": item["subject"],
                        "drf": float(drf),
                        "measured_log2": measured,
                        "estimated_log2": estimated,
                        "equivalent_drf_measured": equivalent_drf(measured, estimator.calibration),
                        "equivalent_drf_estimated": equivalent_drf(estimated, estimator.code_calibration),
                        "legacy_drf": None if legacy is None else estimate_drf(low, dict(legacy)),
                    }
                )
    return records


def _rms(values: Sequence[float]) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def estimator_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per test set (and over all): RMS and mean error of the noise level, RMS error of the equivalent DRF against
    the measured noise's and against the DRF label, and the bundle-0.2 estimator's error against the label."""
    rows = []
    sets = list(dict.fromkeys(r["test_set"] for r in records))
    for name in sets + (["all"] if len(sets) > 1 else []):
        mine = [r for r in records if name in ("all", r["test_set"])]
        noise_error = [r["estimated_log2"] - r["measured_log2"] for r in mine]
        code_error = [np.log2(r["equivalent_drf_estimated"] / r["equivalent_drf_measured"]) for r in mine]
        label_error = [np.log2(r["equivalent_drf_measured"] / r["drf"]) for r in mine]
        estimate_label_error = [np.log2(r["equivalent_drf_estimated"] / r["drf"]) for r in mine]
        legacy = [np.log2(r["legacy_drf"] / r["drf"]) for r in mine if r["legacy_drf"] is not None]
        rows.append(
            {
                "test set": name,
                "studies": len(mine),
                "noise level: RMS error, log2": f"{_rms(noise_error):.2f}",
                "noise level: mean error, log2": f"{np.mean(noise_error):+.2f}",
                "equivalent DRF: RMS error vs measured noise's, log2": f"{_rms(code_error):.2f}",
                "measured noise's equivalent DRF vs DRF label: RMS, log2": f"{_rms(label_error):.2f}",
                "estimated equivalent DRF vs DRF label: RMS, log2": f"{_rms(estimate_label_error):.2f}",
                "bundle 0.2 estimate vs DRF label: RMS, log2": f"{_rms(legacy):.2f}" if legacy else "",
            }
        )
    return rows


def estimator_comparison_rows(
    records_a: Sequence[Mapping[str, Any]], records_b: Sequence[Mapping[str, Any]], names: tuple[str, str]
) -> list[dict[str, Any]]:
    """Two estimators' reports on the same studies, per test set (and over all): each one's RMS error in log2 noise
    and the paired difference of their squared errors, each subject's mean over its dose levels, a - b with a 95 %
    bootstrap CI over subjects (below 0: `a` reads closer). Refused when the two reports hold other studies."""

    def keyed(records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, float], float]:
        return {
            (r["test_set"], r["subject"], float(r["drf"])): (r["estimated_log2"] - r["measured_log2"]) ** 2
            for r in records
        }

    a, b = keyed(records_a), keyed(records_b)
    if set(a) != set(b):
        raise InputDataError(f"estimator comparison: the reports of {names[0]} and {names[1]} hold other studies")
    sets = list(dict.fromkeys(key[0] for key in a))
    rows = []
    for name in sets + (["all"] if len(sets) > 1 else []):
        subjects = sorted({k[:2] for k in a if name in ("all", k[0])})
        per_subject = [
            [float(np.mean([errors[k] for k in errors if k[:2] == subject])) for subject in subjects]
            for errors in (a, b)
        ]
        studies = [k for k in a if name in ("all", k[0])]
        rows.append(
            {
                "test set": name,
                "studies": len(studies),
                f"RMS error, log2 noise: {names[0]}": f"{np.sqrt(np.mean([a[k] for k in studies])):.2f}",
                f"RMS error, log2 noise: {names[1]}": f"{np.sqrt(np.mean([b[k] for k in studies])):.2f}",
                f"squared error: {names[0]} - {names[1]} (subjects)": paired_comparison(*per_subject).interval()
                + f" ({len(subjects)})",
            }
        )
    return rows


def estimator_markdown(records: Sequence[Mapping[str, Any]], header: Sequence[str], figure: str | None) -> str:
    """The report: `header`, the table of `estimator_rows`, the figure, and per test set and DRF the mean error."""
    rows = estimator_rows(records)
    lines = list(header) + [format_table(rows, list(rows[0])), ""]
    if figure:
        lines += [f"![estimated against measured noise level]({figure})", ""]
    per_drf = []
    for name in dict.fromkeys(r["test_set"] for r in records):
        for drf in sorted({r["drf"] for r in records if r["test_set"] == name}):
            mine = [r for r in records if r["test_set"] == name and r["drf"] == drf]
            error = [r["estimated_log2"] - r["measured_log2"] for r in mine]
            per_drf.append(
                {
                    "test set": name,
                    "DRF label": f"{drf:g}",
                    "measured noise, mean": f"{np.mean([2.0 ** r['measured_log2'] for r in mine]):.4f}",
                    "estimate error, mean (min to max), log2": f"{np.mean(error):+.2f} ({min(error):+.2f} to "
                    f"{max(error):+.2f})",
                    "equivalent DRF of the measured noise, mean": f"{np.mean([r['equivalent_drf_measured'] for r in mine]):.3g}",
                }
            )
    lines += ["## Per dose level", "", format_table(per_drf, list(per_drf[0])), ""]
    return "\n".join(lines) + "\n"


def plot_estimator(records: Sequence[Mapping[str, Any]], path: str, caption: str) -> None:
    """Estimated against measured log2 noise level, one colour per test set, with the identity line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import save_figure

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name in dict.fromkeys(r["test_set"] for r in records):
        mine = [r for r in records if r["test_set"] == name]
        ax.scatter([r["measured_log2"] for r in mine], [r["estimated_log2"] for r in mine], s=12, label=name)
    low = min(min(r["measured_log2"], r["estimated_log2"]) for r in records)
    high = max(max(r["measured_log2"], r["estimated_log2"]) for r in records)
    ax.plot([low, high], [low, high], color="grey", lw=0.8)
    for offset in (-0.5, 0.5):
        ax.plot([low, high], [low + offset, high + offset], color="grey", lw=0.6, ls="--")
    ax.set_xlabel("measured log2 relative noise (low - full)")
    ax.set_ylabel("estimated from the low-dose image alone")
    ax.legend(fontsize=8)
    fig.suptitle(caption, fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
