"""Run the paper's study (the proposed network's and AC-Net's cross-validations, the classical baselines, the
ablations and Table II's timings), score every method with one metric code, and hand the results to `report`.

Every method is scored at every dose level the datalist names (`image_drf<D>`): the networks' folds are evaluated at
each level, and each classical baseline is tuned per fold at each level on that fold's training subjects.

Every step reuses finished work (cross-validation folds, baseline predictions, scores), so re-running the command
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

from ..baselines.per_fold import apply_leave_one_out
from ..baselines.tuning import load_cases
from ..data import datalist_drf, dose_levels, load_datalist
from ..errors import ConfigValueError
from ..io import ensure_writable_dir, read_json
from ..loocv import CrossValidation
from ..mlflow_tracking import default_tracking_uri
from .ablations import ABLATIONS, PROTOCOLS, Protocol, variant_slug
from .report import StudyResults, write_report
from .reused_records import load_reused, merge_reused, scores_at
from .scoring import display_name, score_records
from .table_ii import table_ii_timings

__all__ = ["PaperReproduction", "display_name", "scores_at"]

logger = logging.getLogger(__name__)


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
        baseline_dose_levels: {baseline: DRFs} to run a slow baseline at only some dose levels (default: each
            baseline at every level); the report lists where a baseline was not run.
        reuse_records: a `results.json` of an earlier report whose evaluation records stand in for `reuse_methods`.
        reuse_methods: methods (report names: proposed, AC-Net, Gaussian, NLM, BM3D) whose records are taken from
            `reuse_records` at every dose level that file holds for them, so that a study too long for one machine
            session is assembled from parts. A reused network is not trained here; a reused baseline still runs at
            the levels the file lacks (within `baseline_dose_levels`). The report names the file, its command and
            its machine.
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
    baseline_dose_levels: dict[str, Sequence[float]] = field(default_factory=dict)
    reuse_records: Path | None = None
    reuse_methods: Sequence[str] = ()
    reused_levels: set[tuple[str, float | None]] = field(default_factory=set, init=False)  # (method, drf) reused

    def __post_init__(self) -> None:
        self.runs_dir = ensure_writable_dir(self.runs_dir, "runs folder")
        self.out_dir = ensure_writable_dir(self.out_dir, "report folder")
        self.loocv_dir = Path(self.loocv_dir) if self.loocv_dir else self.runs_dir / "loocv"
        self.tracking_uri = self.tracking_uri or default_tracking_uri(self.runs_dir)
        self.command = self.command or " ".join(shlex.quote(a) for a in sys.argv)

    # -- runs ------------------------------------------------------------------------------------------
    def _cv(
        self,
        files: Sequence[str],
        out: Path,
        experiment: str,
        overrides: dict[str, Any] | None = None,
        baselines: Sequence[str] = (),
        dose_levels: str | Sequence[float] = (),
    ) -> CrossValidation:
        merged = dict(self.overrides)
        merged.update(overrides or {})
        return CrossValidation(
            list(files),
            out,
            evaluate_file=self.evaluate_file,
            overrides=merged,
            tracking_uri=self.tracking_uri,
            experiment_name=experiment,
            baselines=baselines,
            dose_levels=dose_levels,
        )

    def run_main(self) -> CrossValidation:
        cv = self._cv(self.config_files, self.loocv_dir, "paper-proposed", baselines=["gaussian"], dose_levels="all")
        cv.run(self.folds)
        return cv

    def run_acnet(self) -> CrossValidation | None:
        if not self.acnet_files:
            return None
        cv = self._cv(
            [*self.config_files, *self.acnet_files],
            self.runs_dir / "acnet",
            "paper-acnet",
            overrides=self.acnet_overrides,
            dose_levels="all",
        )
        cv.run(self.folds)
        return cv

    def baselines_dir(self, drf: float | None, primary: float | None) -> Path:
        """Where a dose level's baseline predictions go: `baselines/` for `image`, `baselines/drf<D>/` else."""
        root = self.runs_dir / "baselines"
        return root if drf is None or drf == primary else root / f"drf{drf:g}"

    def run_baselines(
        self, datalist: str, test_subjects: Sequence[str] | None, tracking: bool = True
    ) -> dict[float | None, dict[str, dict[str, str]]]:
        """Every classical baseline at every dose level (or at its `baseline_dose_levels`), tuned per fold at that
        level, the datalist's own level first: {drf: {method: {subject: prediction}}}."""
        primary = datalist_drf(datalist)
        levels = self.dose_levels(datalist)
        self.check_baseline_dose_levels(levels)
        out = {}
        for drf in sorted(levels, key=lambda d: d != primary):
            methods = [m for m in self.baselines if self.baseline_runs_at(m, drf)]
            if not methods:
                continue
            out[drf] = apply_leave_one_out(
                datalist,
                self.baselines_dir(drf, primary),
                methods,
                self.tracking_uri if tracking else None,
                "paper-baselines",
                test_subjects=test_subjects,
                drf=None if drf is None or drf == primary else drf,
            )
        return out

    def baseline_runs_at(self, method: str, drf: float | None) -> bool:
        """Whether `method` is run at dose level `drf`: every level unless `baseline_dose_levels` names it, and never
        where its records are reused."""
        if (display_name(method), drf) in self.reused_levels:
            return False
        chosen = self.baseline_dose_levels.get(method)
        return chosen is None or drf in [float(d) for d in chosen]

    def check_baseline_dose_levels(self, levels: Sequence[float | None]) -> None:
        """A one-line error for a restricted baseline that is not compared or a level the datalist lacks."""
        for method, chosen in self.baseline_dose_levels.items():
            if method not in self.baselines:
                raise ConfigValueError(f"setting baseline dose levels: {method!r} is not among {list(self.baselines)}")
            missing = [d for d in chosen if float(d) not in levels]
            if missing:
                raise ConfigValueError(
                    f"setting baseline dose levels: {method} at DRF {missing}, which the datalist does not hold "
                    f"(it has {[d for d in levels if d is not None]})"
                )

    @staticmethod
    def dose_levels(datalist: str) -> list[float | None]:
        """The dose levels scored: every `image_drf<D>` of the datalist, else only `image` (at its stated DRF)."""
        return dose_levels(load_datalist(datalist)) or [datalist_drf(datalist)]

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
                folder = self.ablation_dir(study, variant)
                cv = self._cv(self.config_files, folder, f"paper-ablation-{study}", overrides=overrides)
                folds = self.protocol.folds
                cv.run(folds, summary=False)
                n = len(cv.subjects()) if folds is None else None
                ran = list(range(n)) if folds is None else list(folds)
                results[study][variant] = [read_json(cv.fold_result_path(f), "fold result") for f in ran]
        return results

    def ablation_dir(self, study: str, variant: str) -> Path:
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

    def reused(self) -> dict[str, Any]:
        """The records of `reuse_methods` from `reuse_records` (see `reused_records.load_reused`)."""
        reused = load_reused(self.reuse_records, self.reuse_methods)
        self.reused_levels = reused.pop("reused_levels", set())
        return reused

    # -- scoring ---------------------------------------------------------------------------------------
    def _datalist(self) -> str:
        cv = self._cv(self.config_files, self.loocv_dir, "paper-proposed")
        wf = cv.workflow(cv.config_files, 0, None)
        wf.initialize()
        return wf.parser.get_parsed_content("datalist_file")

    @staticmethod
    def _network_predictions(cv_dir: Path, primary: float | None) -> dict[float | None, dict[str, str]]:
        """{drf: {test subject: prediction}} of every finished fold, at every dose level it was evaluated at."""
        out: dict[float | None, dict[str, str]] = {}
        for result in sorted(cv_dir.glob("fold*/result.json")):
            record = read_json(result, "fold result")
            for folder, spec in record.get("evaluations", {"eval": {"drf": primary}}).items():
                preds = sorted((result.parent / folder / "predictions").glob("*_denoised.nii.gz"))
                if preds:
                    out.setdefault(spec["drf"], {})[record["test_subject"]] = str(preds[0])
        return out

    # -- report ----------------------------------------------------------------------------------------
    def run(self) -> Path:
        started = time.perf_counter()
        datalist = self._datalist()
        items = load_datalist(datalist)
        bad = [k for k in (self.folds or []) if not 0 <= k < len(items)]
        if bad:
            raise ConfigValueError(f"setting folds: {bad} out of range for {len(items)} subjects (0..{len(items) - 1})")
        reused = self.reused()
        main_cv = None if "proposed" in self.reuse_methods else self.run_main()
        acnet_cv = None if "AC-Net" in self.reuse_methods else self.run_acnet()
        test_subjects = None if self.folds is None else [items[k]["subject"] for k in self.folds]
        baseline_preds = self.run_baselines(datalist, test_subjects)
        ablations = self.run_ablations()
        timings = self._timings(datalist) if self.timing else {}
        cases = [c for c in load_cases(items) if test_subjects is None or c.subject in test_subjects]
        subjects = [c.subject for c in cases]
        primary = datalist_drf(datalist)
        by_dose: dict[float | None, dict[str, dict[str, str]]] = {}
        for drf, preds in baseline_preds.items():
            by_dose[drf] = {display_name(name): p for name, p in preds.items()}
        networks = [("AC-Net", acnet_cv), ("proposed", main_cv)]
        for method, cv in [(m, cv) for m, cv in networks if cv is not None]:
            for drf, preds in self._network_predictions(cv.output_dir, primary).items():
                by_dose.setdefault(drf, {})[method] = preds
        records = score_records(items, datalist, by_dose, subjects, self.runs_dir / "scores.json")
        stored = [r for r in reused["records"] if r["subject"] in subjects]
        records = merge_reused(records, stored, self.reuse_methods, str(self.reuse_records))
        scored_drfs = list(dict.fromkeys(r["drf"] for r in records))
        main_drf = primary if primary in scored_drfs else scored_drfs[0]
        predictions = by_dose.get(main_drf, {})
        scores = scores_at(records, main_drf)
        results = StudyResults(
            cases,
            predictions,
            scores,
            ablations,
            timings,
            main_cv,
            acnet_cv,
            time.perf_counter() - started,
            n_subjects=len(items),
            records=records,
            main_drf=main_drf,
            reused={k: v for k, v in reused.items() if k != "records"},
        )
        report = write_report(self, results)
        return report

    def _timings(self, datalist: str) -> dict[str, float]:
        return table_ii_timings(
            self.config_files,
            self.overrides,
            [*self.config_files, *self.acnet_files] if self.acnet_files else None,
            self.acnet_overrides,
            self.baselines,
            self.runs_dir,
        )
