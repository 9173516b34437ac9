"""The paper's claims judged on our numbers: pure functions from scores to one verdict line per claim.

A verdict is one of **holds**, **does not hold**, **met**, **missed** or, for an ablation whose deciding margin is
smaller than the protocol's run-to-run (seed) spread, only **not resolved**: a margin the protocol cannot resolve
gives no verdict either way.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from ..metrics import paired_comparison

__all__ = ["BETTER", "METRICS", "ablation_claims", "comparison_claims", "seed_spread", "study_means", "verdict"]

METRICS = ("nrmse", "psnr", "ssim")
BETTER = {"nrmse": min, "psnr": max, "ssim": max}

Scores = Mapping[str, Mapping[str, Mapping[str, float]]]  # {method: {subject: {metric: value}}}
StudyResults = Mapping[str, Sequence[Mapping]]  # {variant: [fold result with "metrics"]}


def verdict(holds: bool, margin: float | None = None, spread: float | None = None) -> str:
    """`holds` / `does not hold`, or `not resolved` when the deciding `margin` is below the seed `spread`."""
    if margin is not None and spread is not None and abs(margin) < spread:
        return "not resolved"
    return "holds" if holds else "does not hold"


def _resolution_note(margin: float | None, spread: float | None) -> str:
    if margin is None or spread is None or abs(margin) >= spread:
        return ""
    return f"; the deciding margin of {abs(margin):.2f} dB is below the seed spread of {spread:.2f} dB"


Pairing = Callable[[str, str], tuple[Mapping[str, Mapping[str, float]], Mapping[str, Mapping[str, float]]]]
"""(a, b) -> a's and b's {subject: {metric: value}} over the subjects scored on the same data."""


def comparison_claims(
    scores: Scores,
    methods: Sequence[str],
    subjects: Sequence[str],
    proposed: str = "proposed",
    pairing: Pairing | None = None,
) -> list[str]:
    """Claim 1 (the proposed network beats every other method on every subject) and the quality targets; wins and
    paired differences over the subjects that `pairing` gives (default: every subject of `scores`)."""
    if proposed not in scores:
        return []
    pair = pairing or (lambda a, b: (scores[a], scores[b]))
    lines = []
    for other in [m for m in methods if m not in (proposed, "low dose")]:
        mine, theirs = pair(proposed, other)
        common = [s for s in subjects if s in mine and s in theirs]
        n = len(common)
        wins = {
            k: sum(BETTER[k](mine[s][k], theirs[s][k]) == mine[s][k] and mine[s][k] != theirs[s][k] for s in common)
            for k in METRICS
        }
        lines.append(
            f"- Proposed beats {other} on every subject: **{verdict(n > 0 and all(v == n for v in wins.values()))}** "
            f"(wins on NRMSE {wins['nrmse']}/{n}, PSNR {wins['psnr']}/{n}, SSIM {wins['ssim']}/{n}; "
            f"{_paired_psnr(mine, theirs, common)})."
        )
    mean = {m: {k: float(np.mean([scores[m][s][k] for s in subjects])) for k in METRICS} for m in scores}
    classical = [m for m in ("Gaussian", "NLM", "BM3D") if m in scores]
    if classical:
        best = max(classical, key=lambda m: mean[m]["psnr"])
        gap = mean[proposed]["psnr"] - mean[best]["psnr"]
        lines.append(
            f"- Quality target, >= 1.5 dB mean PSNR above the best classical method ({best}): "
            f"**{'met' if gap >= 1.5 else 'missed'}** ({gap:+.2f} dB; "
            f"{_paired_psnr(*pair(proposed, best), subjects)})."
        )
    if "AC-Net" in scores:
        p, a = mean[proposed], mean["AC-Net"]
        better = [k for k in METRICS if BETTER[k](p[k], a[k]) == p[k]]
        lines.append(
            f"- Quality target, proposed beats AC-Net on mean PSNR, NRMSE and SSIM: "
            f"**{'met' if len(better) == 3 else 'missed'}** (better on {better}; PSNR {p['psnr']:.2f} vs "
            f"{a['psnr']:.2f} dB, NRMSE {p['nrmse']:.4f} vs {a['nrmse']:.4f}, SSIM {p['ssim']:.4f} vs {a['ssim']:.4f}; "
            f"{_paired_psnr(*pair(proposed, 'AC-Net'), subjects)})."
        )
    return lines


def _paired_psnr(
    a: Mapping[str, Mapping[str, float]], b: Mapping[str, Mapping[str, float]], subjects: Sequence[str]
) -> str:
    """The paired PSNR difference of `a` over `b` (over the subjects both hold) with its 95 % bootstrap interval and
    sign test."""
    common = [s for s in subjects if s in a and s in b]
    if len(common) < 2:
        return "one subject: no paired interval" if common else "no subject scored on the same data: no pair"
    c = paired_comparison([a[s]["psnr"] for s in common], [b[s]["psnr"] for s in common])
    over = "" if len(common) == len(subjects) else f" over the {len(common)} subjects scored on the same data"
    return (
        f"paired PSNR difference{over} {c.mean_difference:+.2f} dB, 95 % CI {c.ci_low:+.2f} to {c.ci_high:+.2f}, "
        f"sign test p = {c.sign_test_p:.3g}"
    )


def study_means(study: StudyResults, metric: str = "network_psnr") -> dict[str, float]:
    """Mean of `metric` over the folds of every variant."""
    return {v: float(np.mean([r["metrics"][metric] for r in res])) for v, res in study.items()}


def seed_spread(ablations: Mapping[str, StudyResults]) -> tuple[float | None, dict[str, float]]:
    """The span of mean PSNR over the repeatability study's seeds (None without two seeds), and the means."""
    seeds = study_means(ablations["repeatability"]) if len(ablations.get("repeatability", {})) > 1 else {}
    return (max(seeds.values()) - min(seeds.values()) if seeds else None), seeds


def ablation_claims(ablations: Mapping[str, StudyResults]) -> list[str]:
    """Claims 2-5 (skip connections, input slices, depth, loss), each resolved against the seed spread."""
    lines: list[str] = []
    spread, seeds = seed_spread(ablations)
    if spread is not None:
        lines.append(
            f"- Run-to-run spread of this protocol: the proposed config trained with {len(seeds)} seeds spans "
            f"{spread:.2f} dB mean PSNR ({', '.join(f'{k} {v:.2f}' for k, v in seeds.items())} dB); a claim decided "
            "by a smaller margin is *not resolved*."
        )

    def means(study: str, needed: Sequence[str]) -> dict[str, float] | None:
        if study not in ablations:
            return None
        m = study_means(ablations[study])
        missing = [v for v in needed if v not in m]
        if missing:
            lines.append(f"- {study.replace('_', ' ')}: not evaluated (variants {missing} were not run).")
            return None
        return m

    m = means("skip_connections", ["R+C (both)", "C only (concatenate)", "R only (residual)", "none"])
    if m:
        both, c, r, none = m["R+C (both)"], m["C only (concatenate)"], m["R only (residual)"], m["none"]
        margin = both - max(c, r, none)
        lines.append(
            f"- Only residual and concatenate skips together are clearly better (R+C beats C only, R only and none): "
            f"**{verdict(margin > 0, margin, spread)}** (mean PSNR R+C {both:.2f}, C {c:.2f}, R {r:.2f}, none "
            f"{none:.2f} dB{_resolution_note(margin, spread)}; concatenate skips alone are {c - none:+.2f} dB over "
            f"none, the residual alone {r - none:+.2f} dB)."
        )
    m = means("input_slices", ["1 slice", "3 slices", "5 slices", "7 slices"])
    if m:
        one, three, more = m["1 slice"], m["3 slices"], max(m["5 slices"], m["7 slices"])
        holds = three - one >= 0.3 and more - three < 0.3
        lines.append(
            f"- 3 slices clearly beat 1 (>= 0.3 dB), and 5 or 7 add little (< 0.3 dB): "
            f"**{verdict(holds, three - one, spread)}** (1: {one:.2f}, 3: {three:.2f}, "
            f"5: {m['5 slices']:.2f}, 7: {m['7 slices']:.2f} dB{_resolution_note(three - one, spread)})."
        )
    m = means("depth", ["np=3, nc=2"])
    if m:
        best = max(m, key=m.get)
        gap = m[best] - m["np=3, nc=2"]
        margin = gap if gap > 0.2 else None
        lines.append(
            f"- np = 3, nc = 2 is at or near the best of the grid (within 0.2 dB): "
            f"**{verdict(gap <= 0.2, margin, spread)}** (np=3, nc=2: {m['np=3, nc=2']:.2f} dB; "
            f"best {best}: {m[best]:.2f} dB; {len(m)} settings run{_resolution_note(margin, spread)})."
        )
    m = means("loss", ["L1", "L2"])
    if m:
        others = ", ".join(f"{k} {v:.2f}" for k, v in m.items() if k not in ("L1", "L2"))
        margin = m["L1"] - m["L2"]
        resolved = verdict(True, margin, spread) != "not resolved"
        winner = ("L1 better" if margin > 0 else "L2 better") if resolved else "not resolved"
        lines.append(
            f"- L1 versus L2: mean PSNR L1 {m['L1']:.2f} dB, L2 {m['L2']:.2f} dB "
            f"(**{winner}**{_resolution_note(margin, spread)})" + (f"; {others} dB." if others else ".")
        )
    return lines
