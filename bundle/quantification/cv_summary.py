"""The cross-validation summary as a pure function of the folds' results: the per-subject table with mean and sd,
and the per-dose, lesion, regional and paired tables of the test subjects (`summary.md`)."""

from __future__ import annotations

from typing import Any, Sequence

from ..tables import format_table, summarise
from .markdown import markdown_sections
from .records import Records

__all__ = ["CV_METRICS", "cv_summary"]

CV_METRICS = ("nrmse", "psnr", "ssim")
_NAMES = {"low_dose": "low dose", "gaussian": "Gaussian", "network": "network"}


def cv_summary(
    rows: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]], baselines: Sequence[str]
) -> dict[str, Any]:
    """{"stats": mean and sd per column, "methods", "table": the per-subject table, "markdown": summary.md} of the
    folds' test rows (one per subject) and evaluation records (every method at every dose level)."""
    stats = summarise(rows)
    methods = [m for m in ("low_dose", *baselines, "network") if f"{m}_psnr" in rows[0]]
    columns = ["subject"] + [f"{m}_{k}" for k in CV_METRICS for m in methods]
    mean_row = {"subject": "mean"} | {c: stats[c]["mean"] for c in columns[1:]}
    sd_row = {"subject": "sd"} | {c: stats[c]["sd"] for c in columns[1:]}
    table = format_table([*rows, mean_row, sd_row], columns)
    sections: list[str] = []
    if records:
        reference = "gaussian" if "gaussian" in methods else methods[-1]
        by_dose = Records(list(records))
        detail = [d for d in (200.0, 20.0) if d in by_dose.drfs] or by_dose.drfs[:1]
        sections = markdown_sections(by_dose, methods, "low_dose", reference, "network", _NAMES, detail, heading="##")
    return {"stats": stats, "methods": methods, "table": table, "markdown": "\n".join([table, "", *sections]) + "\n"}
