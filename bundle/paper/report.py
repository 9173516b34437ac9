"""The report of the paper reproduction: docs/results/README.md, results.json and every figure, from the scores
and runs of a study (`study`: the `PaperReproduction` that ran it, read-only). Claims are judged by `claims`;
nothing here trains or scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..baselines.per_fold import tuned_records
from ..benchmark.measure import machine_description
from ..io import write_json, write_text
from ..quantification import Records, markdown_sections
from ..tables import format_table
from . import figures
from .ablation_report import ablation_pointer
from .claims import METRICS
from .claims_report import claims_section, other_data_lines
from .scoring import display_name
from .table_i import carried_table_i_section, table_i_section

__all__ = ["StudyResults", "write_report"]


@dataclass
class StudyResults:
    """What a study produced, for the report: the scored test cases, every method's predictions and scores, the
    ablation results, Table II's timings, the two cross-validations, the run time and the dataset's size."""

    cases: list
    predictions: dict[str, dict[str, str]]
    scores: dict[str, dict[str, dict[str, float]]]
    ablations: dict[str, dict[str, list[dict]]]
    timings: dict[str, Any]
    main_cv: Any
    acnet_cv: Any
    seconds: float
    n_subjects: int
    records: list = field(default_factory=list)  # evaluation records of every method at every dose level
    main_drf: float | None = None  # the dose level of the paper's comparison (`image`)
    reused: dict[str, Any] = field(default_factory=dict)  # command and machine of reused records, if any


def write_report(study: Any, results: StudyResults) -> Path:
    """Write README.md, results.json and the figures into `study.out_dir`; returns the README path."""
    r = results
    cases, predictions, scores, ablations, timings = r.cases, r.predictions, r.scores, r.ablations, r.timings
    main_cv, acnet_cv, seconds, n_subjects = r.main_cv, r.acnet_cv, r.seconds, r.n_subjects
    out = study.out_dir
    subjects = [c.subject for c in cases]
    methods = [m for m in scores if len(scores[m]) == len(subjects)]
    lines = [
        "# Reproducing Xu et al. (2017) on the simulated default dataset",
        "",
        f"Regenerate this folder (every table and figure) with:\n\n```\n{study.command}\n```\n",
        "Finished runs are reused, so the command resumes an interrupted study and, once everything has run, "
        "only rewrites the report.",
        "",
        "## Runs and their configs",
        "",
    ]
    if main_cv is not None:
        lines.append(
            f"- Proposed network: leave-one-out over {len(subjects)} subjects, configs `{study.config_files}`, "
            f"overrides `{study.overrides}`; fold outputs in `{main_cv.output_dir}`."
        )
    if study.reuse_methods:
        levels = r.reused.get("levels", {})
        named = [
            f"{m} (DRF {', '.join('image' if d is None else f'{d:g}' for d in levels[m])})" if levels.get(m) else m
            for m in study.reuse_methods
        ]
        lines.append(
            f"- **Reused, not rerun here:** {', '.join(named)}: these evaluation records come from "
            f"`{study.reuse_records}`, written by `{r.reused.get('command')}` on {r.reused.get('machine')}."
        )
        lines += other_data_lines(r.records)
    if acnet_cv is not None:
        lines.append(
            f"- AC-Net: configs `{[*study.config_files, *study.acnet_files]}`, overrides "
            f"`{dict(study.overrides, **study.acnet_overrides)}`; fold outputs in `{acnet_cv.output_dir}`."
        )
    lines += [
        f"- Classical baselines {list(study.baselines)}: parameters tuned per fold on the 8 training subjects "
        f"(never the test subject), predictions in `{study.runs_dir / 'baselines'}`.",
        *[
            f"  - **{display_name(m)} was run here only at DRF {', '.join(f'{float(d):g}' for d in levels)}** "
            "(`--baseline-dose-levels`); "
            + (
                "its other dose levels are the reused records above."
                if display_name(m) in study.reuse_methods
                else "its cells at the other dose levels are missing from the tables below."
            )
            for m, levels in study.baseline_dose_levels.items()
        ],
        f"- Ablations: {study.protocol.description}; each variant is the proposed config plus the overrides listed "
        f"in `configs/ablations/<study>.json`; outputs in `{study.runs_dir / 'ablations'}`.",
        f"- MLflow: `mlflow ui --backend-store-uri {str(study.tracking_uri).replace(str(Path.cwd()), '$PWD')}` "
        "(one experiment per study).",
    ]
    lines += _tuned_parameter_lines(study, subjects)
    if "bm3d" in study.baselines:
        lines.append(
            "- BM3D uses the `bm3d` package, which is free for non-commercial use only; it is an optional "
            "extra and the rest of the bundle works without it."
        )
    if study.folds is not None:
        lines.append(
            f"- **Reduced comparison:** only the leave-one-out folds {list(study.folds)} (test subjects "
            f"{subjects}) were run, not all {n_subjects}; every number below is over these test subjects only."
        )
    lines += ["", "## Comparison with other methods (Section III.A)", ""]
    rows = []
    for m in methods:
        vals = {k: np.array([scores[m][s][k] for s in subjects]) for k in METRICS}
        rows.append(
            {
                "method": m,
                **{f"{k} mean": float(vals[k].mean()) for k in METRICS},
                **{f"{k} sd": float(vals[k].std(ddof=1)) if len(subjects) > 1 else 0.0 for k in METRICS},
            }
        )
    paper_convention = _paper_convention_means(r.records, r.main_drf)
    for row in rows:
        row["psnr, paper's convention"] = paper_convention.get(row["method"], float("nan"))
    dose = "" if r.main_drf is None else f" at DRF {r.main_drf:g}"
    lines += [
        f"Mean and sd over the leave-one-out test subjects{dose} (whole volume inside the brain mask; the last column "
        "is the PSNR in the paper's convention, masked images over whole slices, only for holding beside the paper's "
        "Table I):",
        "",
        format_table(
            rows,
            [
                "method",
                "nrmse mean",
                "nrmse sd",
                "psnr mean",
                "psnr sd",
                "ssim mean",
                "ssim sd",
                "psnr, paper's convention",
            ],
        ),
        "",
    ]
    per_subject_rows = [{"subject": s, **{f"{m} psnr": scores[m][s]["psnr"] for m in methods}} for s in subjects]
    lines += [
        "Per-subject PSNR [dB]:",
        "",
        format_table(per_subject_rows, ["subject"] + [f"{m} psnr" for m in methods]),
        "",
    ]
    values = {k: {m: [scores[m][s][k] for s in subjects] for m in methods} for k in METRICS}
    cap = f"regenerate: {study.command}"
    figures.boxplots(values, out / "fig4_boxplots.png", cap)
    figures.per_subject(values, subjects, out / "fig5_per_subject.png", cap)
    lines += ["![Fig. 4 analogue](fig4_boxplots.png)", "", "![Fig. 5 analogue](fig5_per_subject.png)", ""]

    lines += _quantification_section(r, methods, out, cap)
    not_here = [m for m in methods if m in study.reuse_methods and m not in predictions]
    if not_here:  # reused methods have scores but no predictions in this run: keep the section that drew them
        lines += carried_table_i_section(out / "README.md", not_here, r.reused.get("command", "?"))
    else:
        lines += table_i_section(out, cases, predictions, methods, cap)
    lines += claims_section(scores, methods, subjects, ablations, r.records, r.main_drf)
    lines += ablation_pointer(study, ablations, cap)
    lines += _timing_section(timings)
    lines += ["", f"_Report written in {seconds / 60:.1f} min of this run (finished work reused)._", ""]
    path = write_text("\n".join(lines), out / "README.md", overwrite=True)
    write_json(
        {
            "scores": scores,
            "timings": timings,
            "command": study.command,
            "ablations": {s: {v: [r["metrics"] for r in res] for v, res in st.items()} for s, st in ablations.items()},
            "records": r.records,
            "machine": machine_description(),
            "reused": r.reused,
            "main_drf": r.main_drf,
        },
        out / "results.json",
        overwrite=True,
    )
    return path


def _paper_convention_means(records: Sequence[dict[str, Any]], drf: float | None) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for rec in records:
        if rec["drf"] == drf:
            out.setdefault(rec["method"], []).append(rec["paper_convention"]["psnr"])
    return {m: float(np.mean(v)) for m, v in out.items()}


def _quantification_section(r: StudyResults, methods: Sequence[str], out: Path, cap: str) -> list[str]:
    """Every method at every dose level, lesion uptake, brain regions and paired statistics, with a figure."""
    if not r.records:
        return []
    table = Records(r.records)
    detail = [d for d in (200.0, 20.0) if d in table.drfs] or table.drfs[:1]
    figures.dose_curves(table, methods, "low dose", out / "dose_levels.png", cap)
    return [
        "## Every dose level, lesion uptake and brain regions",
        "",
        "Every method at every dose level of the dataset: the networks' folds are evaluated on their test subject at "
        "each level, and each classical baseline is tuned per fold at each level on the fold's training subjects. "
        "Lesions are hot or cold by their contrast in the full-dose image.",
        "",
        "![dose levels](dose_levels.png)",
        "",
        *markdown_sections(
            table, [m for m in methods if m in table.methods], "low dose", "Gaussian", "proposed", {}, detail
        ),
    ]


def _tuned_parameter_lines(study: Any, subjects: Sequence[str]) -> list[str]:
    """Each baseline's tuned parameters per test subject, flagging choices at the edge of the grid."""
    lines = []
    for name in study.baselines:
        records = {s: r for s, r in tuned_records(study.runs_dir / "baselines", name).items() if s in subjects}
        if not records:
            continue
        chosen = "; ".join(
            f"{s}: {r['params']}" + (f" (at the grid's edge in {r['at_grid_edge']})" if r.get("at_grid_edge") else "")
            for s, r in records.items()
        )
        lines.append(f"  - {name} tuned parameters per test subject: {chosen}.")
    return lines


def _timing_section(timings: dict[str, Any]) -> list[str]:
    if not timings:
        return []
    rows = [{"method": k, "ms per 256 x 256 slice": v} for k, v in timings.get("cpu_ms_per_slice", {}).items()]
    return [
        "## Time per 256 x 256 slice (Table II)",
        "",
        f"Measured side by side in one run on this machine ({timings.get('machine', '?')}); "
        f"GPU: {timings.get('gpu', 'not available in this environment')}. Classical methods are timed with the "
        "parameters tuned for the first test subject (their speed depends on them).",
        "",
        format_table(rows, ["method", "ms per 256 x 256 slice"]),
        "",
    ]
