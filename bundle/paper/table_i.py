"""Table I and Figs. 6-8 of the report: two representative slices through lesions, their slice metrics and panels."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..evaluation import lesion_slice
from ..io import load_ras_volume
from ..metrics import masked_nrmse, masked_psnr, masked_ssim
from ..tables import format_table
from . import figures

__all__ = ["table_i_section", "carried_table_i_section"]

SECTION_TITLE = "## Representative slices through a lesion (Table I and Figs. 6-8)"
CARRIED_NOTE = "_Carried over unchanged from the report of"


def table_i_section(
    out_dir: Path, cases: Sequence[Any], predictions: dict[str, dict[str, str]], methods: Sequence[str], cap: str
) -> list[str]:
    """Two representative slices through lesions (the largest lesions): slice metrics and Figs. 6-8 analogues."""
    with_lesion = sorted(
        (c for c in cases if c.lesion is not None and c.lesion.any()), key=lambda c: -int(c.lesion.sum())
    )[:2]
    lines = [SECTION_TITLE, ""]
    if not with_lesion:
        return lines + ["No lesion masks in this dataset.", ""]
    rows = []
    for label, case in zip("AB", with_lesion):
        z = lesion_slice(case.mask, case.lesion)
        images = {"low dose": case.low[..., z]}
        for m in methods:
            if m in predictions and case.subject in predictions[m]:
                images[m] = load_ras_volume(predictions[m][case.subject])[..., z]
        ref, mask = case.full[..., z], case.mask[..., z]
        for m, img in images.items():
            rows.append(
                {
                    "slice": f"{label} ({case.subject}, z={z})",
                    "method": m,
                    "nrmse": masked_nrmse(img, ref, mask),
                    "psnr": masked_psnr(img, ref, mask),
                    "ssim": masked_ssim(img, ref, mask),
                }
            )
        stem = f"fig678_slice_{label}"
        figures.slice_panels(
            images,
            ref,
            case.lesion[..., z],
            f"slice {label}: {case.subject}, axial {z}",
            {k: out_dir / f"{stem}_{k}.png" for k in ("images", "zoom", "errors")},
            cap,
        )
        lines += [
            f"![slice {label}]({stem}_images.png)",
            "",
            f"![slice {label} zoom]({stem}_zoom.png)",
            "",
            f"![slice {label} errors]({stem}_errors.png)",
            "",
        ]
    return [
        SECTION_TITLE,
        "",
        "Slice metrics use the slice's own reference peak and brain mask.",
        "",
        format_table(rows, ["slice", "method", "nrmse", "psnr", "ssim"]),
        "",
        *lines[2:],
    ]


def carried_table_i_section(previous_report: Path, not_here: Sequence[str], reused_command: str) -> list[str]:
    """The Table I section of the report already in the folder, kept with its figures when `not_here` (methods whose
    records were reused) have no predictions in this run to draw; a note says so, and so does its absence."""
    text = previous_report.read_text().splitlines() if previous_report.is_file() else []
    start = text.index(SECTION_TITLE) if SECTION_TITLE in text else None
    if start is None:
        return [SECTION_TITLE, "", f"Not drawn: {', '.join(not_here)} were reused without their predictions.", ""]
    end = next((i for i in range(start + 1, len(text)) if text[i].startswith("## ")), len(text))
    body = [line for line in text[start + 1 : end] if not line.startswith(CARRIED_NOTE)]
    note = (
        f"{CARRIED_NOTE} `{reused_command}`, with its figures: {', '.join(not_here)} were reused from that run "
        "without their predictions, so this run does not redraw the slices._"
    )
    return [SECTION_TITLE, "", note, *body]
