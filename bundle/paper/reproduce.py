"""Regenerate the paper's comparison, ablations and timing, and write `docs/results/README.md`.

Every step reuses finished work (cross-validation folds, baseline predictions), so re-running the command
after an interruption continues where it stopped and a complete re-run only rewrites the report.
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..baselines.tuning import Case, load_cases
from ..crossval import CrossValidation
from ..data import load_datalist
from ..evaluation import format_table, lesion_slice
from ..errors import ConfigValueError
from ..io import ensure_writable_dir, read_json, write_json, write_text
from ..metrics import image_metrics, masked_nrmse, masked_psnr, masked_ssim
from . import figures
from .baselines_run import run_classical_baselines
from .studies import ABLATIONS, PROTOCOLS, Protocol, variant_slug

__all__ = ["PaperReproduction"]

logger = logging.getLogger(__name__)
METRICS = ("nrmse", "psnr", "ssim")
BETTER = {"nrmse": min, "psnr": max, "ssim": max}


def _load_canonical(path: str | Path) -> np.ndarray:
    import nibabel as nib

    return np.asarray(nib.as_closest_canonical(nib.load(str(path))).get_fdata(dtype=np.float32))


@dataclass
class PaperReproduction:
    """The whole study for one training profile.

    Args:
        runs_dir: where every run of the study lives (cross-validations, baselines, ablations).
        out_dir: the report folder (docs/results).
        config_files: training config(s) of the profile (train.json [+ profile file]).
        overrides: config overrides applied to every run (e.g. the dataset for a tiny study).
        baselines: classical baselines to compare (bm3d only when installed).
        acnet_files: extra config file(s) turning the network into AC-Net; empty skips AC-Net.
        acnet_overrides: extra overrides for AC-Net runs (e.g. its epoch budget on CPU).
        protocol: how the ablations run ('cpu-reduced' or 'full').
        studies: which ablation studies to run (default: every study of `variants`).
        command: the command line that produced the report (written into it).
        folds: leave-one-out folds of the comparison (default all); fewer folds is a documented reduced run.
    """

    runs_dir: Path
    out_dir: Path
    config_files: list[str]
    overrides: dict[str, Any] = field(default_factory=dict)
    baselines: Sequence[str] = ("gaussian", "nlm", "bm3d")
    acnet_files: Sequence[str] = ("configs/variants/acnet.json",)
    acnet_overrides: dict[str, Any] = field(default_factory=dict)
    protocol: Protocol = PROTOCOLS["cpu-reduced"]
    studies: Sequence[str] | None = None  # default: every study of `variants`
    variants: dict[str, dict[str, dict[str, Any]]] | None = None  # default: ABLATIONS
    loocv_dir: Path | None = None
    tracking_uri: str | None = None
    timing: bool = True
    command: str = ""
    evaluate_file: str = "configs/evaluate.json"
    folds: Sequence[int] | None = None

    def __post_init__(self) -> None:
        self.runs_dir = ensure_writable_dir(self.runs_dir, "runs folder")
        self.out_dir = ensure_writable_dir(self.out_dir, "report folder")
        self.loocv_dir = Path(self.loocv_dir) if self.loocv_dir else self.runs_dir / "loocv"
        self.tracking_uri = self.tracking_uri or _sqlite(self.runs_dir)
        self.command = self.command or " ".join(shlex.quote(a) for a in sys.argv)

    # -- runs ------------------------------------------------------------------------------------------
    def _cv(self, files: Sequence[str], out: Path, experiment: str, overrides: dict[str, Any] | None = None,
            baselines: Sequence[str] = ()) -> CrossValidation:
        merged = dict(self.overrides)
        merged.update(overrides or {})
        return CrossValidation(list(files), out, evaluate_file=self.evaluate_file, overrides=merged,
                               tracking_uri=self.tracking_uri, experiment_name=experiment, baselines=baselines)

    def run_main(self) -> CrossValidation:
        cv = self._cv(self.config_files, self.loocv_dir, "paper-proposed", baselines=["gaussian"])
        cv.run(self.folds)
        return cv

    def run_acnet(self) -> CrossValidation | None:
        if not self.acnet_files:
            return None
        cv = self._cv([*self.config_files, *self.acnet_files], self.runs_dir / "acnet", "paper-acnet",
                      overrides=self.acnet_overrides)
        cv.run(self.folds)
        return cv

    def run_ablations(self) -> dict[str, dict[str, list[dict]]]:
        """Run every study's variants under the protocol; returns {study: {variant: [fold results]}}."""
        results: dict[str, dict[str, list[dict]]] = {}
        table = self.variants or ABLATIONS
        for study in self.studies if self.studies is not None else list(table):
            results[study] = {}
            for variant, changes in table[study].items():
                overrides = dict(self.protocol.overrides)
                if self.protocol.num_epochs is not None:
                    overrides["num_epochs"] = self.protocol.num_epochs
                overrides.update(changes)
                folder = self._ablation_dir(study, variant)
                cv = self._cv(self.config_files, folder, f"paper-ablation-{study}", overrides=overrides)
                folds = self.protocol.folds
                cv.run(folds, summary=False)
                n = len(cv.subjects()) if folds is None else None
                ran = list(range(n)) if folds is None else list(folds)
                results[study][variant] = [read_json(cv.fold_result_path(f), "fold result") for f in ran]
        return results

    def _ablation_dir(self, study: str, variant: str) -> Path:
        """A variant's run folder; the variant equal to the proposed config (one per study) is run once and shared."""
        changes = (self.variants or ABLATIONS)[study][variant]
        return self.runs_dir / "ablations" / ("proposed" if self._is_default(changes) else variant_slug(study, variant))

    def _is_default(self, changes: dict[str, Any]) -> bool:
        """True when `changes` leaves the profile's config (with the study-wide overrides) unchanged."""
        from monai.bundle import ConfigParser

        parser = ConfigParser()
        parser.read_config(list(self.config_files))
        parser.update(dict(self.overrides))
        return all(parser.get(key) == value for key, value in changes.items())

    # -- scoring ---------------------------------------------------------------------------------------
    def _datalist(self) -> str:
        cv = self._cv(self.config_files, self.loocv_dir, "paper-proposed")
        wf = cv._workflow(cv.config_files, 0, None)
        wf.initialize()
        return wf.parser.get_parsed_content("datalist_file")

    @staticmethod
    def _network_predictions(cv_dir: Path) -> dict[str, str]:
        out = {}
        for result in sorted(cv_dir.glob("fold*/result.json")):
            record = read_json(result, "fold result")
            preds = sorted((result.parent / "eval" / "predictions").glob("*_denoised.nii.gz"))
            if preds:
                out[record["test_subject"]] = str(preds[0])
        return out

    def score(self, cases: list[Case], predictions: dict[str, dict[str, str]]) -> dict[str, dict[str, dict[str, float]]]:
        """{method: {subject: {metric: value}}} for the low-dose input and every method, one metric code."""
        scores: dict[str, dict[str, dict[str, float]]] = {"low dose": {}}
        for case in cases:
            scores["low dose"][case.subject] = image_metrics(case.low, case.full, case.mask)
        for method, paths in predictions.items():
            scores[method] = {}
            for case in cases:
                if case.subject in paths:
                    scores[method][case.subject] = image_metrics(_load_canonical(paths[case.subject]), case.full, case.mask)
        return scores

    # -- report ----------------------------------------------------------------------------------------
    def run(self) -> Path:
        started = time.perf_counter()
        datalist = self._datalist()
        items = load_datalist(datalist)
        bad = [k for k in (self.folds or []) if not 0 <= k < len(items)]
        if bad:
            raise ConfigValueError(f"setting folds: {bad} out of range for {len(items)} subjects (0..{len(items) - 1})")
        main_cv = self.run_main()
        acnet_cv = self.run_acnet()
        test_subjects = None if self.folds is None else [items[k]["subject"] for k in self.folds]
        baseline_preds = run_classical_baselines(datalist, self.runs_dir / "baselines", self.baselines,
                                                 self.tracking_uri, "paper-baselines", test_subjects=test_subjects)
        ablations = self.run_ablations()
        timings = self._timings(datalist) if self.timing else {}
        cases = [c for c in load_cases(items) if test_subjects is None or c.subject in test_subjects]
        predictions: dict[str, dict[str, str]] = {name.upper() if name != "gaussian" else "Gaussian": p
                                                  for name, p in baseline_preds.items()}
        if acnet_cv is not None:
            predictions["AC-Net"] = self._network_predictions(acnet_cv.output_dir)
        predictions["proposed"] = self._network_predictions(main_cv.output_dir)
        scores = self.score(cases, predictions)
        report = self._write(cases, predictions, scores, ablations, timings, main_cv, acnet_cv, time.perf_counter() - started,
                             n_subjects=len(items))
        return report

    def _timings(self, datalist: str) -> dict[str, float]:
        from ..benchmarking import table_ii_timings

        return table_ii_timings(self.config_files, self.overrides, [*self.config_files, *self.acnet_files] if self.acnet_files else None,
                                self.acnet_overrides, self.baselines, self.runs_dir)

    def _write(self, cases, predictions, scores, ablations, timings, main_cv, acnet_cv, seconds, n_subjects: int) -> Path:
        out = self.out_dir
        subjects = [c.subject for c in cases]
        methods = [m for m in scores if len(scores[m]) == len(subjects)]
        lines = [
            "# Reproducing Xu et al. (2017) on the simulated default dataset",
            "",
            f"Regenerate this folder (every table and figure) with:\n\n```\n{self.command}\n```\n",
            "Finished runs are reused, so the command resumes an interrupted study and, once everything has run, "
            "only rewrites the report.",
            "",
            "## Runs and their configs",
            "",
            f"- Proposed network: leave-one-out over {len(subjects)} subjects, configs `{self.config_files}`, "
            f"overrides `{self.overrides}`; fold outputs in `{main_cv.output_dir}`.",
        ]
        if acnet_cv is not None:
            lines.append(f"- AC-Net: configs `{[*self.config_files, *self.acnet_files]}`, overrides "
                         f"`{dict(self.overrides, **self.acnet_overrides)}`; fold outputs in `{acnet_cv.output_dir}`.")
        lines += [
            f"- Classical baselines {list(self.baselines)}: parameters tuned per fold on the 8 training subjects "
            f"(never the test subject), predictions in `{self.runs_dir / 'baselines'}`.",
            f"- Ablations: {self.protocol.description}; each variant is the proposed config plus the overrides listed "
            f"in `bundle/paper/studies.py`; outputs in `{self.runs_dir / 'ablations'}`.",
            f"- MLflow: `mlflow ui --backend-store-uri {self.tracking_uri}` (one experiment per study).",
        ]
        lines += self._tuned_parameter_lines(subjects)
        if "bm3d" in self.baselines:
            lines.append("- BM3D uses the `bm3d` package, which is free for non-commercial use only; it is an optional "
                         "extra and the rest of the bundle works without it.")
        if self.folds is not None:
            lines.append(f"- **Reduced comparison:** only the leave-one-out folds {list(self.folds)} (test subjects "
                         f"{subjects}) were run, not all {n_subjects}; every number below is over these test subjects only.")
        lines += ["", "## Comparison with other methods (Section III.A)", ""]
        rows = []
        for m in methods:
            vals = {k: np.array([scores[m][s][k] for s in subjects]) for k in METRICS}
            rows.append({"method": m, **{f"{k} mean": float(vals[k].mean()) for k in METRICS},
                         **{f"{k} sd": float(vals[k].std(ddof=1)) if len(subjects) > 1 else 0.0 for k in METRICS}})
        lines += ["Mean and sd over the leave-one-out test subjects (whole volume inside the brain mask):", "",
                  format_table(rows, ["method", "nrmse mean", "nrmse sd", "psnr mean", "psnr sd", "ssim mean", "ssim sd"]), ""]
        per_subject_rows = [{"subject": s, **{f"{m} psnr": scores[m][s]["psnr"] for m in methods}} for s in subjects]
        lines += ["Per-subject PSNR [dB]:", "", format_table(per_subject_rows, ["subject"] + [f"{m} psnr" for m in methods]), ""]
        values = {k: {m: [scores[m][s][k] for s in subjects] for m in methods} for k in METRICS}
        cap = f"regenerate: {self.command}"
        figures.boxplots(values, out / "fig4_boxplots.png", cap)
        figures.per_subject(values, subjects, out / "fig5_per_subject.png", cap)
        lines += ["![Fig. 4 analogue](fig4_boxplots.png)", "", "![Fig. 5 analogue](fig5_per_subject.png)", ""]

        lines += self._table_i(cases, predictions, methods, cap)
        lines += self._claims(scores, methods, subjects, ablations)
        lines += self._ablation_section(ablations, cap)
        lines += self._timing_section(timings)
        lines += ["", f"_Report written in {seconds / 60:.1f} min of this run (finished work reused)._", ""]
        path = write_text("\n".join(lines), out / "README.md", overwrite=True)
        write_json({"scores": scores, "timings": timings, "command": self.command,
                    "ablations": {s: {v: [r["metrics"] for r in res] for v, res in st.items()} for s, st in ablations.items()}},
                   out / "results.json", overwrite=True)
        return path

    def _tuned_parameter_lines(self, subjects: Sequence[str]) -> list[str]:
        """Each baseline's tuned parameters per test subject, flagging choices at the edge of the grid."""
        from .baselines_run import tuned_records

        lines = []
        for name in self.baselines:
            records = {s: r for s, r in tuned_records(self.runs_dir / "baselines", name).items() if s in subjects}
            if not records:
                continue
            chosen = "; ".join(f"{s}: {r['params']}" + (f" (at the grid's edge in {r['at_grid_edge']})" if r.get("at_grid_edge") else "")
                               for s, r in records.items())
            lines.append(f"  - {name} tuned parameters per test subject: {chosen}.")
        return lines

    def _table_i(self, cases, predictions, methods, cap) -> list[str]:
        """Two representative slices through lesions: slice metrics and Figs. 6-8 analogues."""
        with_lesion = sorted((c for c in cases if c.lesion is not None and c.lesion.any()),
                             key=lambda c: -int(c.lesion.sum()))[:2]
        lines = ["## Representative slices through a lesion (Table I and Figs. 6-8)", ""]
        if not with_lesion:
            return lines + ["No lesion masks in this dataset.", ""]
        rows = []
        for label, case in zip("AB", with_lesion):
            z = lesion_slice(case.mask, case.lesion)
            images = {"low dose": case.low[..., z]}
            for m in methods:
                if m in predictions and case.subject in predictions[m]:
                    images[m] = _load_canonical(predictions[m][case.subject])[..., z]
            ref, mask = case.full[..., z], case.mask[..., z]
            for m, img in images.items():
                rows.append({"slice": f"{label} ({case.subject}, z={z})", "method": m,
                             "nrmse": masked_nrmse(img, ref, mask), "psnr": masked_psnr(img, ref, mask),
                             "ssim": masked_ssim(img, ref, mask)})
            stem = f"fig678_slice_{label}"
            figures.slice_panels(images, ref, case.lesion[..., z], f"slice {label}: {case.subject}, axial {z}",
                                 {k: self.out_dir / f"{stem}_{k}.png" for k in ("images", "zoom", "errors")}, cap)
            lines += [f"![slice {label}]({stem}_images.png)", "", f"![slice {label} zoom]({stem}_zoom.png)", "",
                      f"![slice {label} errors]({stem}_errors.png)", ""]
        return ["## Representative slices through a lesion (Table I and Figs. 6-8)", "",
                "Slice metrics use the slice's own reference peak and brain mask.", "",
                format_table(rows, ["slice", "method", "nrmse", "psnr", "ssim"]), "", *lines[2:]]

    def _claims(self, scores, methods, subjects, ablations) -> list[str]:
        lines = ["## The paper's claims on our data", ""]
        prop = "proposed"
        if prop in scores:
            others = [m for m in methods if m not in (prop, "low dose")]
            for other in others:
                wins = {k: sum(BETTER[k](scores[prop][s][k], scores[other][s][k]) == scores[prop][s][k]
                               and scores[prop][s][k] != scores[other][s][k] for s in subjects) for k in METRICS}
                verdict = "holds" if all(v == len(subjects) for v in wins.values()) else "does not hold"
                lines.append(f"- Proposed beats {other} on every subject: **{verdict}** "
                             f"(wins on NRMSE {wins['nrmse']}/{len(subjects)}, PSNR {wins['psnr']}/{len(subjects)}, "
                             f"SSIM {wins['ssim']}/{len(subjects)}).")
            classical = [m for m in ("Gaussian", "NLM", "BM3D") if m in scores]
            if classical:
                best = max(classical, key=lambda m: np.mean([scores[m][s]["psnr"] for s in subjects]))
                gap = np.mean([scores[prop][s]["psnr"] for s in subjects]) - np.mean([scores[best][s]["psnr"] for s in subjects])
                lines.append(f"- Quality target, >= 1.5 dB mean PSNR above the best classical method ({best}): "
                             f"**{'met' if gap >= 1.5 else 'missed'}** ({gap:+.2f} dB).")
            if "AC-Net" in scores:
                mean = {m: {k: np.mean([scores[m][s][k] for s in subjects]) for k in METRICS} for m in (prop, "AC-Net")}
                better = [k for k in METRICS if BETTER[k](mean[prop][k], mean["AC-Net"][k]) == mean[prop][k]]
                lines.append(f"- Quality target, proposed beats AC-Net on mean PSNR, NRMSE and SSIM: "
                             f"**{'met' if len(better) == 3 else 'missed'}** (better on {better}; PSNR "
                             f"{mean[prop]['psnr']:.2f} vs {mean['AC-Net']['psnr']:.2f} dB, NRMSE "
                             f"{mean[prop]['nrmse']:.4f} vs {mean['AC-Net']['nrmse']:.4f}, SSIM "
                             f"{mean[prop]['ssim']:.4f} vs {mean['AC-Net']['ssim']:.4f}).")
        lines += self._ablation_claims(ablations)
        return lines + [""]

    @staticmethod
    def _study_means(study: dict[str, list[dict]], metric: str = "network_psnr") -> dict[str, float]:
        return {v: float(np.mean([r["metrics"][metric] for r in res])) for v, res in study.items()}

    def _ablation_claims(self, ablations) -> list[str]:
        lines = []

        def means(study: str, needed: Sequence[str]) -> dict[str, float] | None:
            if study not in ablations:
                return None
            m = self._study_means(ablations[study])
            missing = [v for v in needed if v not in m]
            if missing:
                lines.append(f"- {study.replace('_', ' ')}: not evaluated (variants {missing} were not run).")
                return None
            return m

        seeds = self._study_means(ablations["repeatability"]) if len(ablations.get("repeatability", {})) > 1 else {}
        spread = max(seeds.values()) - min(seeds.values()) if seeds else None
        if spread is not None:
            lines.append(f"- Run-to-run spread of this protocol: the proposed config trained with {len(seeds)} seeds spans "
                         f"{spread:.2f} dB mean PSNR ({', '.join(f'{k} {v:.2f}' for k, v in seeds.items())} dB); a verdict "
                         "decided by a smaller margin is marked *not resolved*.")

        def resolved(margin: float) -> str:
            if spread is None or abs(margin) >= spread:
                return ""
            return f"; *not resolved*: a deciding margin of {abs(margin):.2f} dB is below the seed spread"

        m = means("skip_connections", ["R+C (both)", "C only (concatenate)", "R only (residual)", "none"])
        if m:
            both, c, r, none = m["R+C (both)"], m["C only (concatenate)"], m["R only (residual)"], m["none"]
            holds = both > max(c, r) and abs(c - none) < abs(both - none) and abs(r - none) < abs(both - none)
            lines.append(f"- Residual + concatenate skips beat either alone, and either alone is close to none: "
                         f"**{'holds' if holds else 'does not hold'}** (mean PSNR R+C {both:.2f}, C {c:.2f}, R {r:.2f}, "
                         f"none {none:.2f} dB{resolved(both - max(c, r))}).")
        m = means("input_slices", ["1 slice", "3 slices", "5 slices", "7 slices"])
        if m:
            one, three, more = m["1 slice"], m["3 slices"], max(m["5 slices"], m["7 slices"])
            holds = three - one >= 0.3 and more - three < 0.3
            lines.append(f"- 3 slices clearly beat 1 (>= 0.3 dB), and 5 or 7 add little (< 0.3 dB): "
                         f"**{'holds' if holds else 'does not hold'}** (1: {one:.2f}, 3: {three:.2f}, "
                         f"5: {m['5 slices']:.2f}, 7: {m['7 slices']:.2f} dB{resolved(three - one)}).")
        m = means("depth", ["np=3, nc=2"])
        if m:
            best = max(m, key=m.get)
            gap = m[best] - m["np=3, nc=2"]
            lines.append(f"- np = 3, nc = 2 is at or near the best of the grid (within 0.2 dB): "
                         f"**{'holds' if gap <= 0.2 else 'does not hold'}** (np=3, nc=2: {m['np=3, nc=2']:.2f} dB; "
                         f"best {best}: {m[best]:.2f} dB; {len(m)} settings run{resolved(gap) if gap > 0.2 else ''}).")
        m = means("loss", ["L1", "L2"])
        if m:
            others = ", ".join(f"{k} {v:.2f}" for k, v in m.items() if k not in ("L1", "L2"))
            lines.append(f"- L1 versus L2: mean PSNR L1 {m['L1']:.2f} dB, L2 {m['L2']:.2f} dB "
                         f"(**{'L1 better' if m['L1'] > m['L2'] else 'L2 better'}**{resolved(m['L1'] - m['L2'])})"
                         + (f"; {others} dB." if others else "."))
        return lines

    def _ablation_section(self, ablations, cap) -> list[str]:
        lines = ["## Ablations (Sections III.B-D)", "", self.protocol.description + ".", ""]
        not_run = [s for s in ABLATIONS if s not in ablations]
        if not_run:
            lines += [f"Not run for this report: {', '.join(s.replace('_', ' ') for s in not_run)} (select studies with "
                      "`--studies`; finished runs are reused, so adding a study later only trains its variants).", ""]
        for study, variants in ablations.items():
            rows = []
            for variant, results in variants.items():
                metrics = [r["metrics"] for r in results]
                rows.append({"variant": variant, "folds": len(results),
                             **{f"{k} mean": float(np.mean([x[f"network_{k}"] for x in metrics])) for k in METRICS},
                             "psnr gain over low dose": float(np.mean([x["network_psnr"] - x["low_dose_psnr"] for x in metrics]))})
            lines += [f"### {study.replace('_', ' ')}", "", format_table(rows, ["variant", "folds", "nrmse mean", "psnr mean",
                                                                             "ssim mean", "psnr gain over low dose"]), ""]
            bars = {v: {"psnr": [r["metrics"]["network_psnr"] for r in res]} for v, res in variants.items()}
            figures.ablation_bars(bars, "psnr", self.out_dir / f"ablation_{study}.png", f"ablation: {study}", cap)
            lines += [f"![{study}](ablation_{study}.png)", ""]
            if study == "skip_connections":
                curves = {}
                for variant, results in variants.items():
                    per_epoch: dict[int, list[float]] = {}
                    for r in results:
                        hist = self._ablation_dir(study, variant) / f"fold{r['fold']}" / "checkpoints" / "history.csv"
                        if hist.is_file():
                            for row in _read_csv(hist):
                                key = "val_mae" if "val_mae" in row else "val_nrmse"
                                per_epoch.setdefault(int(row["epoch"]), []).append(float(row[key]))
                    curves[variant] = {e: float(np.mean(v)) for e, v in per_epoch.items()}
                figures.loss_curves(curves, self.out_dir / "fig9_skip_connection_curves.png",
                                    "validation loss during training (Fig. 9 analogue)", "validation L1 (normalised)", cap)
                lines += ["Validation-subject loss during training (the paper plots the test loss; we keep the test "
                          "subject out of training entirely and plot the validation subject's):", "",
                          "![Fig. 9 analogue](fig9_skip_connection_curves.png)", ""]
        return lines

    @staticmethod
    def _timing_section(timings: dict[str, Any]) -> list[str]:
        if not timings:
            return []
        rows = [{"method": k, "ms per 256 x 256 slice": v} for k, v in timings.get("cpu_ms_per_slice", {}).items()]
        return ["## Time per 256 x 256 slice (Table II)", "",
                f"Measured side by side in one run on this machine ({timings.get('machine', '?')}); "
                f"GPU: {timings.get('gpu', 'not available in this environment')}. Classical methods are timed with the "
                "parameters tuned for the first test subject (their speed depends on them).", "",
                format_table(rows, ["method", "ms per 256 x 256 slice"]), ""]


def _read_csv(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _sqlite(folder: Path) -> str:
    from ..crossval import default_tracking_uri

    return default_tracking_uri(folder)
