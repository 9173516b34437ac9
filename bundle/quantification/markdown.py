"""The dose, lesion, regional and paired-statistics sections of a report, as markdown."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..tables import format_table
from .records import Records
from .tables import dose_rows, drf_label, lesion_kind_rows, lesion_rows, paired_rows, regional_rows

__all__ = ["markdown_sections"]


def _section(title: str, intro: str, rows: list[dict[str, Any]]) -> list[str]:
    """A markdown section holding one table (nothing without rows)."""
    if not rows:
        return []
    return [title, "", *([intro, ""] if intro else []), format_table(rows, list(rows[0])), ""]


def markdown_sections(
    records: Records,
    methods: Sequence[str],
    input_method: str,
    reference: str,
    proposed: str,
    names: Mapping[str, str],
    detail_drfs: Sequence[float | None],
    heading: str = "###",
) -> list[str]:
    """The dose, lesion, regional and paired-statistics sections as markdown lines."""
    others = [m for m in methods if m != proposed]
    ref_name = names.get(reference, reference)
    lines = _section(
        f"{heading} Every dose level",
        "Mean over the test subjects; gains are paired over subjects (mean difference and 95 % bootstrap interval); "
        f"{ref_name} is tuned at each dose level on the training subjects only.",
        dose_rows(records, methods, input_method, reference, names),
    )
    for kind in ("hot", "cold"):
        lines += _section(
            f"{heading} Lesion uptake: {kind} lesions",
            "Bias against the full-dose image in percent, 100 x (method / full dose - 1), over every "
            f"{kind} lesion of every test subject; worst = the largest |bias|; SUVpeak is the PERCIST 1 mL "
            "sphere; contrast recovery 1 is perfect.",
            lesion_rows(records, methods, kind, names),
        )
    for drf in detail_drfs:
        lines += _section(
            f"{heading} Lesions by kind at DRF {drf_label(drf)}", "", lesion_kind_rows(records, methods, drf, names)
        )
    for drf in detail_drfs:
        lines += _section(
            f"{heading} Where in the brain, DRF {drf_label(drf)}",
            "Mean PSNR [dB] per region (interior: more than 6 mm inside the brain's edge; edge: the 6 mm band; "
            "the paper's convention: masked images over whole slices, for holding beside the paper's Table I) "
            "and the coefficient of variation of uniform white matter.",
            regional_rows(records, methods, drf, names),
        )
    lines += _section(
        f"{heading} Paired statistics: {names.get(proposed, proposed)} against every other method",
        "Differences over the same subjects (method on the left minus the right); for the lesion bias a negative "
        "difference means the left method keeps uptake better.",
        paired_rows(records, proposed, others, names),
    )
    return lines
