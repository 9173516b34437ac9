"""The claims section of the paper report: each claim of the paper judged on our data with paired intervals over the
subjects scored on the same data, and its rewrite from a stored report."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputDataError
from ..io import read_json, write_text
from ..quantification import Records
from .claims import ablation_claims, comparison_claims

__all__ = ["CLAIMS_HEADING", "claims_section", "other_data_lines", "rewrite_claims"]


CLAIMS_HEADING = "## The paper's claims on our data"


def claims_section(scores, methods, subjects, ablations, records=(), drf=None) -> list[str]:
    lines = [CLAIMS_HEADING, ""]
    pairing = _same_data_pairing(records, drf) if records else None
    return lines + comparison_claims(scores, methods, subjects, pairing=pairing) + ablation_claims(ablations) + [""]


def other_data_lines(records: Sequence[dict[str, Any]]) -> list[str]:
    """Where reused records were scored on other simulated data than this run's, how far the inputs differ."""
    fresh = {(r["drf"], r["subject"]): r for r in records if r["method"] == "low dose" and not r.get("data")}
    other = [(r, fresh.get((r["drf"], r["subject"]))) for r in records if r["method"] == "low dose" and r.get("data")]
    other = [(a, b) for a, b in other if b is not None]
    if not other:
        return []
    diffs = [abs(a["psnr"] - b["psnr"]) for a, b in other]
    subjects = sorted({a["subject"] for a, _ in other})
    return [
        f"  - **Other simulated data:** for {len(other)} of the (subject, dose level) pairs ({len(subjects)} subjects) "
        "the stored low-dose input is not this run's (the simulation drew other noise on that machine: low-dose PSNR "
        f"differs by {np.mean(diffs):.3f} dB on average, {max(diffs):.3f} dB at most). There the reused records are "
        "compared only with the stored records of the same data (input, Gaussian and the rest), never with this "
        "run's; every paired interval below pairs like with like."
    ]


def _same_data_pairing(records: Sequence[dict[str, Any]], drf: float | None):
    """(a, b) -> their {subject: metrics} at `drf` over the subjects both were scored on with the same data."""
    table = Records(records)

    def pair(a: str, b: str):
        pairs = table.pairs(drf, a, b)
        return {s: ra for s, (ra, _) in pairs.items()}, {s: rb for s, (_, rb) in pairs.items()}

    return pair


def rewrite_claims(report_dir: str | Path) -> Path:
    """Judge the claims again from a report's stored `results.json` and replace its claims section in README.md
    (after a change to the claim logic; nothing is trained or scored). Returns the README path."""
    folder = Path(report_dir)
    stored = read_json(folder / "results.json", "report results")
    readme = folder / "README.md"
    text = readme.read_text(encoding="utf-8")
    start = text.find(CLAIMS_HEADING)
    if start < 0:
        raise InputDataError(f"{readme}: no section '{CLAIMS_HEADING}' to rewrite")
    end = text.find("\n## ", start + len(CLAIMS_HEADING))
    scores = stored["scores"]
    subjects = list(next(iter(scores.values())))
    methods = [m for m in scores if len(scores[m]) == len(subjects)]
    ablations = {s: {v: [{"metrics": m} for m in ms] for v, ms in st.items()} for s, st in stored["ablations"].items()}
    records = stored.get("records", []) if "main_drf" in stored else []  # older files: plain pairing
    drf = stored.get("main_drf")
    section = "\n".join(claims_section(scores, methods, subjects, ablations, records, drf))
    return write_text(text[:start] + section + (text[end:] if end >= 0 else "\n"), readme, overwrite=True)
