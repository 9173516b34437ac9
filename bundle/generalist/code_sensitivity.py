"""How much a dose-conditioned model loses when its dose code is wrong: each test study denoised with its true DRF
and with the DRF scaled by 2^e for log2 errors e, PSNR (brain mask) against the full dose; the curve users read to
know what an error of the estimate or of the header costs."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..data import at_dose, load_datalist
from ..io import atomic_path, load_ras_volume
from ..metrics import masked_psnr, paired_comparison
from ..quantification.references import SubjectReferences
from ..tables import format_table

__all__ = ["code_error_markdown", "code_error_records", "code_error_rows", "plot_code_error"]

Denoise = Callable[[str, float], np.ndarray]  # (low-dose NIfTI path, DRF given) -> RAS volume


def code_error_records(
    test_sets: Mapping[str, str],
    drfs: Sequence[float],
    log2_errors: Sequence[float],
    denoise: Denoise,
    trained_range: tuple[float, float],
) -> list[dict[str, Any]]:
    """{test_set, subject, drf, log2_error, given_drf, psnr, input_psnr} for every study at every DRF and every
    log2 error whose given DRF lies in `trained_range` (the model refuses the others)."""
    records = []
    for name, datalist in test_sets.items():
        for item in load_datalist(datalist):
            references = SubjectReferences(item)
            for drf in drfs:
                path = at_dose([item], float(drf))[0]["image"]
                low = load_ras_volume(path)
                input_psnr = masked_psnr(low, references.full, references.mask)
                for error in log2_errors:
                    given = float(drf) * 2.0 ** float(error)
                    if not trained_range[0] <= given <= trained_range[1]:
                        continue
                    psnr = masked_psnr(denoise(path, given), references.full, references.mask)
                    records.append(
                        {
                            "test_set": name,
                            "subject": item["subject"],
                            "drf": float(drf),
                            "log2_error": float(error),
                            "given_drf": given,
                            "psnr": float(psnr),
                            "input_psnr": float(input_psnr),
                        }
                    )
    return records


def code_error_rows(records: Sequence[Mapping[str, Any]], test_set: str) -> list[dict[str, Any]]:
    """Per DRF and log2 error of one test set: the PSNR change against the true code, paired over the studies (mean
    and 95 % bootstrap interval), and on how many studies the output is worse than the input."""
    mine = [r for r in records if r["test_set"] == test_set]
    true = {(r["subject"], r["drf"]): r["psnr"] for r in mine if r["log2_error"] == 0.0}
    rows = []
    for drf in sorted({r["drf"] for r in mine}):
        for error in sorted({r["log2_error"] for r in mine if r["drf"] == drf}):
            chosen = [r for r in mine if r["drf"] == drf and r["log2_error"] == error and (r["subject"], drf) in true]
            if not chosen:
                continue
            wrong = [r["psnr"] for r in chosen]
            right = [true[(r["subject"], drf)] for r in chosen]
            change = paired_comparison(wrong, right) if len(chosen) > 1 else None
            rows.append(
                {
                    "DRF": f"{drf:g}",
                    "log2 code error": f"{error:+g}",
                    "DRF given": f"{drf * 2.0 ** error:.3g}",
                    "PSNR": float(np.mean(wrong)),
                    "change vs true code, dB (95 % CI)": (
                        ""
                        if error == 0.0 or change is None
                        else f"{change.mean_difference:+.2f} ({change.ci_low:+.2f} to {change.ci_high:+.2f})"
                    ),
                    "worse than input": f"{sum(r['psnr'] < r['input_psnr'] for r in chosen)}/{len(chosen)}",
                }
            )
    return rows


def code_error_markdown(records: Sequence[Mapping[str, Any]], header: Sequence[str], figure: str | None) -> str:
    """The report: `header`, the figure, then one table per test set."""
    lines = list(header)
    if figure:
        lines += [f"![PSNR against the code error]({figure})", ""]
    for test_set in dict.fromkeys(r["test_set"] for r in records):
        rows = code_error_rows(records, test_set)
        lines += [f"## {test_set}", "", format_table(rows, list(rows[0])), ""]
    return "\n".join(lines) + "\n"


def plot_code_error(records: Sequence[Mapping[str, Any]], path: str, caption: str) -> None:
    """Mean PSNR change against the log2 code error, one line per DRF, one panel per test set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(r["test_set"] for r in records))
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4), squeeze=False)
    for ax, test_set in zip(axes[0], sets):
        mine = [r for r in records if r["test_set"] == test_set]
        true = {(r["subject"], r["drf"]): r["psnr"] for r in mine if r["log2_error"] == 0.0}
        for drf in sorted({r["drf"] for r in mine}):
            errors = sorted({r["log2_error"] for r in mine if r["drf"] == drf})
            means = [
                np.mean(
                    [r["psnr"] - true[(r["subject"], drf)] for r in mine if r["drf"] == drf and r["log2_error"] == e]
                )
                for e in errors
            ]
            ax.plot(errors, means, marker="o", label=f"DRF {drf:g}")
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xlabel("log2(DRF given / true DRF)")
        ax.set_ylabel("PSNR change vs the true code [dB]")
        ax.set_title(test_set)
        ax.legend(fontsize=8)
    fig.suptitle(caption, fontsize=8)
    fig.tight_layout()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
