"""Runs side by side against one reference run, from an evaluate_generalist report: per test set and DRF, the mean
PSNR of the input, the leave-one-out Gaussian, the reference and each run; each run's paired difference from the
reference (95 % bootstrap CI); the subjects each run leaves below their input and its smallest gain over the input;
and the hot lesions' mean signed SUVmean bias (hot by the phantom's lesion kind)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..metrics.statistics import paired_comparison
from ..quantification.records import lesions_of
from .study import INPUT, LOO_GAUSSIAN

__all__ = ["hot_suv_mean_bias", "paired_runs_rows", "paired_runs_markdown"]


def hot_suv_mean_bias(records: Sequence[Mapping[str, Any]]) -> float:
    """Mean signed SUVmean bias (%) over the hot lesions of `records` (NaN without any)."""
    values = [les["suv_mean_bias_pct"] for r in records for les in lesions_of(r, "hot")]
    return float(np.mean(values)) if values else float("nan")


def paired_runs_rows(
    cells: Mapping[tuple, Mapping[str, Mapping[str, Any]]], reference: str, runs: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per (test set, DRF) that has every method: {test_set, drf, subjects, psnr: {method: mean}, versus:
    {run: PairedComparison against the reference}, worse: {method: subjects below their input}, smallest_gain:
    {method: min dB over the input}, hot_bias: {method: mean signed SUVmean bias %}}."""
    methods = [INPUT, LOO_GAUSSIAN, reference, *runs]
    rows = []
    for test_set, drf in dict.fromkeys((key[0], key[1]) for key in cells):
        if not all((test_set, drf, m) in cells for m in methods):
            continue
        subjects = sorted(set.intersection(*(set(cells[(test_set, drf, m)]) for m in methods)))
        if len(subjects) < 2:
            continue
        psnr = {m: np.array([cells[(test_set, drf, m)][s]["psnr"] for s in subjects]) for m in methods}
        gains = {m: psnr[m] - psnr[INPUT] for m in (reference, *runs)}
        rows.append(
            {
                "test_set": test_set,
                "drf": drf,
                "subjects": len(subjects),
                "psnr": {m: float(v.mean()) for m, v in psnr.items()},
                "versus": {r: paired_comparison(psnr[r], psnr[reference]) for r in runs},
                "worse": {m: int((g < 0).sum()) for m, g in gains.items()},
                "smallest_gain": {m: float(g.min()) for m, g in gains.items()},
                "hot_bias": {
                    m: hot_suv_mean_bias([cells[(test_set, drf, m)][s] for s in subjects]) for m in (reference, *runs)
                },
            }
        )
    return rows


def paired_runs_markdown(rows: Sequence[Mapping[str, Any]], reference: str, runs: Sequence[str]) -> str:
    """The rows of `paired_runs_rows` as one markdown table."""
    compared = (reference, *runs)
    header = (
        ["test set", "DRF", "input", "Gaussian (LOO)", *compared]
        + [f"{r} - {reference}" for r in runs]
        + ["worse than the input: " + " / ".join(compared), "smallest gain over the input", "hot SUVmean bias"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        n = row["subjects"]
        cells = [row["test_set"], f"{row['drf']:g}"] + [f"{row['psnr'][m]:.2f}" for m in (INPUT, LOO_GAUSSIAN)]
        cells += [f"{row['psnr'][m]:.2f}" for m in compared]
        for r in runs:
            c = row["versus"][r]
            cells.append(c.interval())
        cells.append(" / ".join(f"{row['worse'][m]}/{n}" for m in compared))
        cells.append(" / ".join(f"{row['smallest_gain'][m]:+.2f}" for m in compared))
        cells.append(" / ".join(f"{row['hot_bias'][m]:+.1f}" for m in compared) + " %")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
