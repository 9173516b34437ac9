"""Figures of the report (analogues of the paper's Figs. 4-13). Every file is written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..io import save_figure

__all__ = ["boxplots", "per_subject", "slice_panels", "ablation_bars", "loss_curves", "dose_curves"]

METRIC_LABELS = {"nrmse": "NRMSE (lower is better)", "psnr": "PSNR [dB]", "ssim": "SSIM"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path, caption: str) -> Path:
    fig.text(0.01, 0.005, caption, fontsize=6, color="0.4", ha="left", va="bottom")
    return save_figure(fig, path)


def boxplots(values: Mapping[str, Mapping[str, Sequence[float]]], path: str | Path, caption: str) -> Path:
    """Fig. 4 analogue: per-subject metric distributions per method, means as green diamonds.

    values: {metric: {method: per-subject values}}.
    """
    plt = _plt()
    metrics = list(values)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4.2))
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        methods = list(values[metric])
        data = [values[metric][m] for m in methods]
        ax.boxplot(
            data, showmeans=True, meanprops={"marker": "D", "markerfacecolor": "green", "markeredgecolor": "green"}
        )
        ax.set_xticks(range(1, len(methods) + 1), methods, rotation=30, ha="right", fontsize=8)
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _save(fig, path, caption)


def per_subject(
    values: Mapping[str, Mapping[str, Sequence[float]]], subjects: Sequence[str], path: str | Path, caption: str
) -> Path:
    """Fig. 5 analogue: every method's score for every leave-one-out test subject."""
    plt = _plt()
    metrics = list(values)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.0 * len(metrics), 4.0))
    x = np.arange(len(subjects))
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        for method, scores in values[metric].items():
            ax.plot(x, scores, marker="o", label=method, linewidth=1)
        ax.set_xticks(x, subjects, rotation=45, ha="right", fontsize=7)
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=10)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _save(fig, path, caption)


def _lesion_box(lesion: np.ndarray | None, shape: tuple[int, int], margin: int = 10) -> tuple[slice, slice]:
    if lesion is None or not lesion.any():
        h, w = shape
        return slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4)
    idx = np.argwhere(lesion)
    lo = np.maximum(idx.min(0) - margin, 0)
    hi = np.minimum(idx.max(0) + margin + 1, shape)
    size = int(max(hi - lo))
    centre = (lo + hi) // 2
    lo = np.clip(centre - size // 2, 0, np.array(shape) - size)
    return slice(int(lo[0]), int(lo[0]) + size), slice(int(lo[1]), int(lo[1]) + size)


def slice_panels(
    images: Mapping[str, np.ndarray],
    reference: np.ndarray,
    lesion: np.ndarray | None,
    title: str,
    paths: Mapping[str, str | Path],
    caption: str,
) -> dict[str, Path]:
    """Figs. 6-8 analogues for one axial slice: images, a zoom on the lesion, and |image - full dose| maps.

    images: method -> 2D slice (the full-dose reference first is added automatically).
    paths: {"images": ..., "zoom": ..., "errors": ...}.
    """
    plt = _plt()
    vmax = float(np.percentile(reference, 99.8)) or 1.0
    shown = {"full dose": reference, **images}
    box = _lesion_box(lesion, reference.shape)
    out = {}
    for kind in ("images", "zoom", "errors"):
        names = list(shown) if kind != "errors" else list(images)
        fig, axes = plt.subplots(1, len(names), figsize=(2.3 * len(names), 2.7))
        for ax, name in zip(np.atleast_1d(axes), names):
            img = shown[name]
            if kind == "zoom":
                img = img[box]
            if kind == "errors":
                ax.imshow(np.rot90(np.abs(img - reference)), cmap="magma", vmin=0, vmax=0.4 * vmax)
                ax.set_title(f"|{name} - full|", fontsize=8)
            else:
                ax.imshow(np.rot90(img), cmap="gray_r", vmin=0, vmax=vmax, interpolation="nearest")
                ax.set_title(name, fontsize=8)
            ax.axis("off")
        fig.suptitle(title + {"images": "", "zoom": " (lesion zoom)", "errors": " (error maps)"}[kind], fontsize=9)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        out[kind] = _save(fig, paths[kind], caption)
    return out


def ablation_bars(
    results: Mapping[str, Mapping[str, Sequence[float]]],
    metric: str,
    path: str | Path,
    title: str,
    caption: str,
    baseline: Mapping[str, float] | None = None,
) -> Path:
    """Mean (bars) and per-fold values (dots) of one metric for every variant of a study."""
    plt = _plt()
    variants = list(results)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(variants) + 1.5), 3.8))
    means = [float(np.mean(results[v][metric])) for v in variants]
    ax.bar(range(len(variants)), means, color="0.75")
    for i, v in enumerate(variants):
        ax.scatter([i] * len(results[v][metric]), results[v][metric], color="k", s=10, zorder=3)
    if baseline:
        for label, value in baseline.items():
            ax.axhline(value, linestyle="--", linewidth=1, label=label)
        ax.legend(fontsize=7)
    lo = min(min(results[v][metric]) for v in variants)
    hi = max(max(results[v][metric]) for v in variants)
    pad = 0.15 * (hi - lo or 1.0)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xticks(range(len(variants)), variants, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(fig, path, caption)


def loss_curves(
    curves: Mapping[str, Mapping[int, float]], path: str | Path, title: str, ylabel: str, caption: str
) -> Path:
    """Fig. 9 analogue: a per-epoch curve (mean over folds) for every variant."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for name, curve in curves.items():
        epochs = sorted(curve)
        ax.plot(epochs, [curve[e] for e in epochs], marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(fig, path, caption)


def dose_curves(records, methods: Sequence[str], input_method: str, path: str | Path, caption: str) -> Path:
    """PSNR gain over the input and mean hot-lesion SUVmean bias against the dose-reduction factor, per method
    (`records`: a `quantification.Records`); error bars are the paired 95 % bootstrap intervals of the gain."""
    from ..quantification import lesions_of

    plt = _plt()
    drfs = [d for d in records.drfs if d is not None]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method in methods:
        gains, lows, highs, biases, xs = [], [], [], [], []
        for drf in drfs:
            if not records.of(drf, method):
                continue
            xs.append(drf)
            c = None if method == input_method else records.paired(drf, method, input_method, lambda r: r["psnr"])
            gains.append(0.0 if c is None else c.mean_difference)
            lows.append(0.0 if c is None else c.mean_difference - c.ci_low)
            highs.append(0.0 if c is None else c.ci_high - c.mean_difference)
            hot = [v["suv_mean_bias_pct"] for r in records.of(drf, method).values() for v in lesions_of(r, "hot")]
            biases.append(float(np.mean(hot)) if hot else np.nan)
        if xs:
            left.errorbar(xs, gains, yerr=[lows, highs], marker="o", capsize=3, label=method)
            right.plot(xs, biases, marker="o", label=method)
    for ax, label in ((left, "PSNR gain over the low-dose input [dB]"), (right, "hot-lesion SUVmean bias [%]")):
        ax.set_xscale("log")
        ax.set_xticks(drfs, [f"{d:g}" for d in drfs])
        ax.axhline(0.0, color="0.5", lw=0.8)
        ax.set_xlabel("dose-reduction factor (DRF)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _save(fig, path, caption)
