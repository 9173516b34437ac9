"""The ablation part of the paper report: Sections III.B-D's tables and figures, kept in their own file."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from ..io import write_text
from ..tables import format_table
from . import figures
from .ablations import ABLATIONS
from .claims import METRICS

__all__ = ["ABLATIONS_FILE", "ablation_pointer"]

ABLATIONS_FILE = "ablations.md"


def ablation_pointer(study: Any, ablations, cap) -> list[str]:
    """Ablations live in their own file, written only by a run that trained them, so that a report rerun for the
    comparison alone keeps the last ablation study (with the command that produced it) instead of erasing it."""
    lines = ["## Ablations (Sections III.B-D)", ""]
    if ablations:
        body = _ablation_section(study, ablations, cap)
        header = [
            "# Ablations (Sections III.B-D) of Xu et al. on the simulated default dataset",
            "",
            f"Regenerate with `{study.command}`.",
            "",
        ]
        write_text("\n".join(header + body[2:]), study.out_dir / ABLATIONS_FILE, overwrite=True)
        return lines + [f"In [{ABLATIONS_FILE}]({ABLATIONS_FILE}), from this run.", ""]
    return lines + [
        f"Not rerun for this report (`--studies` chose none); [{ABLATIONS_FILE}]({ABLATIONS_FILE}) holds the last "
        "ablation study, with the command and dataset that produced it.",
        "",
    ]


def _ablation_section(study: Any, ablations, cap) -> list[str]:
    lines = ["## Ablations (Sections III.B-D)", "", study.protocol.description + ".", ""]
    not_run = [s for s in ABLATIONS if s not in ablations]
    if not_run:
        lines += [
            f"Not run for this report: {', '.join(s.replace('_', ' ') for s in not_run)} (select studies with "
            "`--studies`; finished runs are reused, so adding a study later only trains its variants).",
            "",
        ]
    for name, variants in ablations.items():
        rows = []
        for variant, results in variants.items():
            metrics = [r["metrics"] for r in results]
            rows.append(
                {
                    "variant": variant,
                    "folds": len(results),
                    **{f"{k} mean": float(np.mean([x[f"network_{k}"] for x in metrics])) for k in METRICS},
                    "psnr gain over low dose": float(
                        np.mean([x["network_psnr"] - x["low_dose_psnr"] for x in metrics])
                    ),
                }
            )
        lines += [
            f"### {name.replace('_', ' ')}",
            "",
            format_table(rows, ["variant", "folds", "nrmse mean", "psnr mean", "ssim mean", "psnr gain over low dose"]),
            "",
        ]
        bars = {v: {"psnr": [r["metrics"]["network_psnr"] for r in res]} for v, res in variants.items()}
        figures.ablation_bars(bars, "psnr", study.out_dir / f"ablation_{name}.png", f"ablation: {name}", cap)
        lines += [f"![{name}](ablation_{name}.png)", ""]
        if name == "skip_connections":
            curves = {}
            for variant, results in variants.items():
                per_epoch: dict[int, list[float]] = {}
                for r in results:
                    hist = study.ablation_dir(name, variant) / f"fold{r['fold']}" / "checkpoints" / "history.csv"
                    if hist.is_file():
                        for row in _read_csv(hist):
                            key = "val_mae" if "val_mae" in row else "val_nrmse"
                            per_epoch.setdefault(int(row["epoch"]), []).append(float(row[key]))
                curves[variant] = {e: float(np.mean(v)) for e, v in per_epoch.items()}
            figures.loss_curves(
                curves,
                study.out_dir / "fig9_skip_connection_curves.png",
                "validation loss during training (Fig. 9 analogue)",
                "validation L1 (normalised)",
                cap,
            )
            lines += [
                "Validation-subject loss during training (the paper plots the test loss; we keep the test "
                "subject out of training entirely and plot the validation subject's):",
                "",
                "![Fig. 9 analogue](fig9_skip_connection_curves.png)",
                "",
            ]
    return lines


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
