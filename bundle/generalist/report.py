"""The generalist model's report: the targets, then per test set every dose level, lesion and paired table."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..paper.scoring import display_name
from ..quantification.markdown import markdown_sections
from ..quantification.records import Records
from ..tables import format_table
from .study import GAUSSIAN, INPUT
from .targets import target_rows

__all__ = ["REFERENCE", "report_lines", "same_data_reference"]

REFERENCE = "gaussian-loo"

SET_TITLES = {"paper": "The paper's 9 subjects (default dataset)", "new-anatomy": "The new-anatomy cohort"}


def same_data_reference(records: Sequence[dict[str, Any]], paper_records: Sequence[dict[str, Any]]) -> list[dict]:
    """The paper report's leave-one-out-tuned Gaussian records, as `REFERENCE` records of the paper test set, for each
    (DRF, subject) whose low-dose score there equals this evaluation's (the same simulated data)."""

    def indexed(method: str) -> dict[tuple, dict[str, Any]]:
        mine = (r for r in paper_records if r.get("data") is None and r["method"] == method)
        return {(r["drf"], "paper/" + r["subject"]): r for r in mine}

    their_input, their_gaussian = indexed(INPUT), indexed(display_name(GAUSSIAN))
    out = []
    for r in records:
        key = (r["drf"], r["subject"])
        if r["test_set"] != "paper" or r["method"] != INPUT or key not in their_gaussian or key not in their_input:
            continue
        if abs(their_input[key]["psnr"] - r["psnr"]) < 1e-6:
            out.append(dict(their_gaussian[key], subject=r["subject"], method=REFERENCE, test_set="paper"))
    return out


def report_lines(
    records: Sequence[dict[str, Any]],
    methods: Sequence[str],
    proposed: str,
    drfs: Sequence[float],
    header: Sequence[str],
    names: Mapping[str, str],
) -> list[str]:
    """Markdown lines: `header`, the targets of `proposed`, then each test set's sections."""
    by_set: dict[str, Records] = {}
    for name in dict.fromkeys(r["test_set"] for r in records):
        by_set[name] = Records(r for r in records if r["test_set"] == name)
    lines = list(header)
    paper = by_set.get("paper")
    if paper is not None:
        for method in methods:
            rows = target_rows(paper, by_set.get("new-anatomy"), method, drfs)
            lines += [f"## Targets: {names.get(method, method)}", "", format_table(rows, list(rows[0])), ""]
        if paper.of(200.0, REFERENCE):
            rows = target_rows(paper, None, proposed, drfs, reference=REFERENCE)
            title = f"## Targets against {names.get(REFERENCE, REFERENCE)}: {names.get(proposed, proposed)}"
            lines += [title, "", format_table(rows, list(rows[0])), ""]
    reference = [REFERENCE] if paper is not None and REFERENCE in paper.methods else []
    all_methods = [INPUT, GAUSSIAN, *reference, *methods]
    for name, table in by_set.items():
        lines += [f"## {SET_TITLES.get(name, name)}", ""]
        lines += markdown_sections(table, all_methods, INPUT, GAUSSIAN, proposed, names, detail_drfs=[20.0, 200.0])
    return lines
