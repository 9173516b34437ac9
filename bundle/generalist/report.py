"""The generalist model's report: the targets, then per test set every dose level, lesion and paired table."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..quantification.markdown import markdown_sections
from ..quantification.records import Records
from ..tables import format_table
from .study import GAUSSIAN, INPUT, LOO_GAUSSIAN
from .targets import side_by_side_rows, target_rows

__all__ = ["REFERENCE", "records_by_cell", "report_lines"]

REFERENCE = LOO_GAUSSIAN  # the targets' Gaussian: tuned leave-one-out on each test set's own protocol

SET_TITLES = {
    "paper": "The paper's 9 subjects (default dataset)",
    "new-anatomy": "The new-anatomy cohort",
    "new-scanners": "The new-scanners cohort (new brains on randomised scanners and protocols)",
    "new-scanners-native": "The new-scanners cohort on its own grids (1.5-2.7 mm pixels, 2.4-3.3 mm slices: off the training grid)",
    "second-simulator": "The independent simulator's cohort (another projector, PSF, reconstruction and count scale)",
}


def records_by_cell(results: str | Path) -> tuple[list[dict[str, Any]], dict[tuple, dict[str, dict[str, Any]]]]:
    """An evaluate_generalist report's records, and the same by cell: {(test set, DRF, method): {subject: record}}."""
    from ..io import read_json

    records = read_json(results, "generalist results")["records"]
    cells: dict[tuple, dict[str, dict[str, Any]]] = defaultdict(dict)
    for record in records:
        cells[(record["test_set"], record["drf"], record["method"])][record["subject"]] = record
    return records, cells


def report_lines(
    records: Sequence[dict[str, Any]],
    methods: Sequence[str],
    proposed: str,
    drfs: Sequence[float],
    header: Sequence[str],
    names: Mapping[str, str],
    baselines: Sequence[str] = (),
) -> list[str]:
    """Markdown lines: `header`, the targets of `proposed`, then each test set's sections (with the classical
    `baselines` beside the Gaussians)."""
    by_set: dict[str, Records] = {}
    for name in dict.fromkeys(r["test_set"] for r in records):
        by_set[name] = Records(r for r in records if r["test_set"] == name)
    lines = list(header)
    paper = by_set.get("paper")
    reference = REFERENCE if paper is not None and REFERENCE in paper.methods else GAUSSIAN
    if paper is not None:
        others = {name: table for name, table in by_set.items() if name != "paper"}
        for method in methods:
            rows = target_rows(paper, others, method, drfs, reference=reference)
            lines += [f"## Targets: {names.get(method, method)}", "", format_table(rows, list(rows[0])), ""]
        if len(methods) > 1:
            rows = side_by_side_rows(paper, methods, drfs, names, reference=reference)
            intro = (
                f"The paper subjects; margins paired over subjects against {names.get(reference, reference)}; lesion "
                "bias over every hot lesion against the full-dose image (the targets: <= 5 % at DRF <= 50, <= 8 % at "
                "100-200)."
            )
            lines += ["## Every run side by side", "", intro, "", format_table(rows, list(rows[0])), ""]
    for name, table in by_set.items():
        shown = [m for m in (INPUT, GAUSSIAN, REFERENCE, *baselines, *methods) if m in table.methods]
        set_reference = REFERENCE if REFERENCE in table.methods else GAUSSIAN
        lines += [f"## {SET_TITLES.get(name, name)}", ""]
        lines += markdown_sections(table, shown, INPUT, set_reference, proposed, names, detail_drfs=[20.0, 200.0])
    return lines
