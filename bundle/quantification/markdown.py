"""The dose, lesion, regional and paired-statistics sections of a report, as markdown."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..tables import format_table
from .records import SMALL_LESION_VOXELS, Records
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
            "sphere; contrast recovery 1 is perfect. Hot and cold by the phantom's lesion kind (rims, nodules and "
            "PET-only foci are hot; necrotic cores, whose bias is their rim's spill-in, and cold lesions are cold).",
            lesion_rows(records, methods, kind, names),
        )
    lines += _section(
        f"{heading} Lesion uptake: hot lesions under {SMALL_LESION_VOXELS} voxels",
        "The hot lesions above that are smaller than about 0.8 mL, where partial volume and noise weigh most.",
        lesion_rows(records, methods, "hot", names, small=True),
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
            "and, in pure white matter (more than 4 mm inside it, 10 mm from lesions), the coefficient of variation "
            "of the image (which also reads the phantom's own texture) and the noise, the "
            "SD of the error over the mean.",
            regional_rows(records, methods, drf, names),
        )
    lines += _section(
        f"{heading} Paired statistics: {names.get(proposed, proposed)} against every other method",
        "Differences over the same subjects (method on the left minus the right); for the lesion bias a negative "
        "difference means the left method keeps uptake better.",
        paired_rows(records, proposed, others, names),
    )
    return lines
