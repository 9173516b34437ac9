"""How much a dose-conditioned model loses when its dose code is wrong: each test study denoised with its true DRF
and with the DRF scaled by 2^e for log2 errors e, PSNR (brain mask) against the full dose; the curve users read to
know what an error of the estimate or of the header costs. With `estimated_drfs`, each study is also denoised with
the code inference chooses when no DRF is given (the noise estimator's), and `estimated_code_rows` compares it with
the true code and with the best code of the grid chosen per study in hindsight. Records of several weights (each
record's `weights`, set by the caller) are compared side by side by `weights_comparison_rows`: at each code error,
one network's PSNR against another's at the same code and against the other's at the true code."""

from __future__ import annotations

import textwrap
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..data import at_dose, load_datalist
from ..io import load_ras_volume, save_figure
from ..metrics import masked_psnr, paired_comparison
from ..quantification.references import SubjectReferences
from ..tables import format_table

__all__ = [
    "code_error_markdown",
    "code_error_records",
    "code_error_rows",
    "estimated_code_rows",
    "plot_code_error",
    "weights_comparison_rows",
]

Denoise = Callable[[str, "float | str"], np.ndarray]  # (low-dose NIfTI path, DRF given or 'auto') -> RAS volume
UsedDrf = Callable[[str], float]  # low-dose NIfTI path -> the DRF inference used for it on the last 'auto' call


def code_error_records(
    test_sets: Mapping[str, str],
    drfs: Sequence[float],
    log2_errors: Sequence[float],
    denoise: Denoise,
    trained_range: tuple[float, float],
    estimated_drfs: Sequence[float] = (),
    used_drf: UsedDrf | None = None,
) -> list[dict[str, Any]]:
    """{test_set, subject, drf, code, log2_error, given_drf, psnr, input_psnr} for every study at every DRF and every
    log2 error whose given DRF lies in `trained_range` (the model refuses the others): `code` "fixed"; and at the
    DRFs in `estimated_drfs`, one record with `code` "estimated": the study denoised with 'auto' (the DRF read from
    the image), whose DRF `used_drf` reports."""
    records = []
    for name, datalist in test_sets.items():
        for item in load_datalist(datalist):
            references = SubjectReferences(item)
            for drf in sorted({float(d) for d in drfs} | {float(d) for d in estimated_drfs}):
                path = at_dose([item], float(drf))[0]["image"]
                low = load_ras_volume(path)
                input_psnr = masked_psnr(low, references.full, references.mask)
                base = {
                    "test_set": name,
                    "subject": item["subject"],
                    "drf": float(drf),
                    "input_psnr": float(input_psnr),
                }
                if float(drf) in [float(d) for d in estimated_drfs] and used_drf is not None:
                    psnr = masked_psnr(denoise(path, "auto"), references.full, references.mask)
                    given = used_drf(path)
                    records.append(
                        {
                            **base,
                            "code": "estimated",
                            "log2_error": float(np.log2(given / float(drf))),
                            "given_drf": given,
                            "psnr": float(psnr),
                        }
                    )
                for error in log2_errors if float(drf) in [float(d) for d in drfs] else ():
                    given = float(drf) * 2.0 ** float(error)
                    if not trained_range[0] <= given <= trained_range[1]:
                        continue
                    psnr = masked_psnr(denoise(path, given), references.full, references.mask)
                    records.append(
                        {**base, "code": "fixed", "log2_error": float(error), "given_drf": given, "psnr": float(psnr)}
                    )
    return records


def _fixed(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records of fixed code errors (records written before estimated codes existed have no `code`)."""
    return [r for r in records if r.get("code", "fixed") == "fixed"]


def estimated_code_rows(records: Sequence[Mapping[str, Any]], test_set: str) -> list[dict[str, Any]]:
    """Per DRF of one test set where estimated codes were run: the estimate's log2 error against the DRF label, its
    PSNR against the true code's (paired, 95 % CI) and against the best code of the grid chosen per study in
    hindsight (mean and worst study), and on how many studies it is worse than the input."""
    mine = [r for r in records if r["test_set"] == test_set]
    rows = []
    for drf in sorted({r["drf"] for r in mine if r.get("code") == "estimated"}):
        estimated = {r["subject"]: r for r in mine if r["drf"] == drf and r.get("code") == "estimated"}
        fixed = [r for r in _fixed(mine) if r["drf"] == drf]
        true = {r["subject"]: r["psnr"] for r in fixed if r["log2_error"] == 0.0}
        best = {s: max(r["psnr"] for r in fixed if r["subject"] == s) for s in {r["subject"] for r in fixed}}
        subjects = sorted(s for s in estimated if s in true)
        vs_true = (
            paired_comparison([estimated[s]["psnr"] for s in subjects], [true[s] for s in subjects])
            if len(subjects) > 1
            else None
        )
        vs_best = [estimated[s]["psnr"] - best[s] for s in subjects]
        errors = [r["log2_error"] for r in estimated.values()]
        rows.append(
            {
                "DRF": f"{drf:g}",
                "code error, mean (min to max), log2": f"{np.mean(errors):+.2f} ({min(errors):+.2f} to "
                f"{max(errors):+.2f})",
                "PSNR, estimated code": float(np.mean([r["psnr"] for r in estimated.values()])),
                "vs true code, dB (95 % CI)": ("" if vs_true is None else vs_true.interval()),
                "vs best grid code in hindsight: mean, worst, dB": (
                    f"{np.mean(vs_best):+.2f}, {min(vs_best):+.2f}" if vs_best else ""
                ),
                "worse than input": f"{sum(r['psnr'] < r['input_psnr'] for r in estimated.values())}/{len(estimated)}",
            }
        )
    return rows


def code_error_rows(records: Sequence[Mapping[str, Any]], test_set: str) -> list[dict[str, Any]]:
    """Per DRF and log2 error of one test set: the PSNR change against the true code, paired over the studies (mean
    and 95 % bootstrap interval), and on how many studies the output is worse than the input."""
    mine = [r for r in _fixed(records) if r["test_set"] == test_set]
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
                    "change vs true code, dB (95 % CI)": ("" if error == 0.0 or change is None else change.interval()),
                    "worse than input": f"{sum(r['psnr'] < r['input_psnr'] for r in chosen)}/{len(chosen)}",
                }
            )
    return rows


def _weights_names(records: Sequence[Mapping[str, Any]]) -> list[str | None]:
    """The weights' names in the order they were run (None for records of one unnamed network)."""
    return list(dict.fromkeys(r.get("weights") for r in records))


def _psnr_by_study(records: Sequence[Mapping[str, Any]], weights: str, test_set: str) -> dict[tuple, float]:
    """{(subject, DRF, log2 error): PSNR} of one network's fixed codes on one test set."""
    return {
        (r["subject"], r["drf"], r["log2_error"]): r["psnr"]
        for r in _fixed(records)
        if r.get("weights") == weights and r["test_set"] == test_set
    }


def _paired_text(a: Sequence[float], b: Sequence[float]) -> str:
    if len(a) < 2:
        return ""
    change = paired_comparison(a, b)
    return change.interval()


def weights_comparison_rows(
    records: Sequence[Mapping[str, Any]], test_set: str, reference: str, other: str
) -> list[dict[str, Any]]:
    """Per DRF and log2 code error of one test set, network `other` against network `reference`, paired over the
    studies (95 % bootstrap CIs): at the same given code, and `other` at that code against `reference` at the true
    code (what a user whose code is that far off loses against the reference given the truth)."""
    ref, oth = _psnr_by_study(records, reference, test_set), _psnr_by_study(records, other, test_set)
    rows = []
    for drf, error in sorted({(d, e) for (_, d, e) in oth}):
        same = sorted(s for (s, d, e) in oth if (d, e) == (drf, error) and (s, d, e) in ref)
        truth = sorted(s for (s, d, e) in oth if (d, e) == (drf, error) and (s, d, 0.0) in ref)
        if not same and not truth:
            continue
        input_psnr = {
            r["subject"]: r["input_psnr"]
            for r in _fixed(records)
            if r.get("weights") == other and r["test_set"] == test_set and r["drf"] == drf
        }
        rows.append(
            {
                "DRF": f"{drf:g}",
                "log2 code error": f"{error:+g}",
                f"PSNR {reference}": float(np.mean([ref[(s, drf, error)] for s in same])) if same else "",
                f"PSNR {other}": float(np.mean([oth[(s, drf, error)] for s in same or truth])),
                f"{other} - {reference}, same code, dB (95 % CI)": _paired_text(
                    [oth[(s, drf, error)] for s in same], [ref[(s, drf, error)] for s in same]
                ),
                f"{other} - {reference} given the true code, dB (95 % CI)": _paired_text(
                    [oth[(s, drf, error)] for s in truth], [ref[(s, drf, 0.0)] for s in truth]
                ),
                f"worse than input: {reference} / {other}": (
                    f"{sum(ref[(s, drf, error)] < input_psnr[s] for s in same)}/{len(same)} / "
                    f"{sum(oth[(s, drf, error)] < input_psnr[s] for s in same or truth)}/{len(same or truth)}"
                ),
            }
        )
    return rows


def code_error_markdown(records: Sequence[Mapping[str, Any]], header: Sequence[str], figure: str | None) -> str:
    """The report: `header`, the figure, then one section per network (when several were run) and test set, and the
    networks side by side against the first."""
    lines = list(header)
    if figure:
        lines += [f"![PSNR against the code error]({figure})", ""]
    names = _weights_names(records)
    for weights in names:
        mine = [r for r in records if r.get("weights") == weights]
        lines += _network_sections(mine, "" if weights is None or len(names) == 1 else f"{weights}: ")
    for other in names[1:]:
        for test_set in dict.fromkeys(r["test_set"] for r in records):
            rows = weights_comparison_rows(records, test_set, names[0], other)
            if rows:
                lines += [f"## {other} against {names[0]}: {test_set}", "", format_table(rows, list(rows[0])), ""]
    return "\n".join(lines) + "\n"


def _network_sections(records: Sequence[Mapping[str, Any]], prefix: str) -> list[str]:
    """One network's tables, one section per test set."""
    lines: list[str] = []
    for test_set in dict.fromkeys(r["test_set"] for r in records):
        lines += [f"## {prefix}{test_set}", ""]
        estimated = estimated_code_rows(records, test_set)
        if estimated:
            lines += [
                "The code inference chooses with no DRF given (read from the image):",
                "",
                format_table(estimated, list(estimated[0])),
                "",
            ]
        rows = code_error_rows(records, test_set)
        if rows:
            lines += ["Fixed errors of the code:", "", format_table(rows, list(rows[0])), ""]
    return lines


def plot_code_error(records: Sequence[Mapping[str, Any]], path: str, caption: str) -> None:
    """Mean PSNR change against the log2 code error, one line per DRF, one panel per test set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(r["test_set"] for r in records))
    names = _weights_names(records)
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4), squeeze=False)
    for ax, test_set in zip(axes[0], sets):
        # every network against the first network's true code, so the curves of several share one zero
        reference = {
            (r["subject"], r["drf"]): r["psnr"]
            for r in _fixed(records)
            if r["test_set"] == test_set and r.get("weights") == names[0] and r["log2_error"] == 0.0
        }
        for n, weights in enumerate(names):
            mine = [r for r in _fixed(records) if r["test_set"] == test_set and r.get("weights") == weights]
            for c, drf in enumerate(sorted({r["drf"] for r in mine})):
                errors = sorted({r["log2_error"] for r in mine if r["drf"] == drf})
                means = [
                    np.mean(
                        [
                            r["psnr"] - reference[(r["subject"], drf)]
                            for r in mine
                            if r["drf"] == drf and r["log2_error"] == e and (r["subject"], drf) in reference
                        ]
                    )
                    for e in errors
                ]
                label = f"DRF {drf:g}" if len(names) == 1 else f"{weights}, DRF {drf:g}"
                ax.plot(errors, means, marker="o", ls=styles[n % len(styles)], color=f"C{c}", label=label)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xlabel("log2(DRF given / true DRF)")
        ax.set_ylabel(
            "PSNR change vs the true code [dB]" if len(names) == 1 else f"PSNR vs {names[0]} at the true code [dB]"
        )
        ax.set_title(test_set)
        ax.legend(fontsize=8)
    fig.suptitle("\n".join(textwrap.wrap(caption, 150)), fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
