"""Run the paper's study (the proposed network's and AC-Net's cross-validations, the classical baselines, the
ablations and Table II's timings), score every method with one metric code, and hand the results to `report`.

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

from ..baselines.per_fold import apply_leave_one_out
from ..baselines.tuning import Case, load_cases
from ..data import load_datalist
from ..errors import ConfigValueError
from ..io import ensure_writable_dir, load_ras_volume, read_json
from ..loocv import CrossValidation
from ..metrics import image_metrics
from ..mlflow_tracking import default_tracking_uri
from .ablations import ABLATIONS, PROTOCOLS, Protocol, variant_slug
from .report import StudyResults, write_report
from .table_ii import table_ii_timings

__all__ = ["PaperReproduction"]

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
        )

    def run_main(self) -> CrossValidation:
        cv = self._cv(self.config_files, self.loocv_dir, "paper-proposed", baselines=["gaussian"])
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
        )
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

    # -- scoring ---------------------------------------------------------------------------------------
    def _datalist(self) -> str:
        cv = self._cv(self.config_files, self.loocv_dir, "paper-proposed")
        wf = cv.workflow(cv.config_files, 0, None)
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

    def score(
        self, cases: list[Case], predictions: dict[str, dict[str, str]]
    ) -> dict[str, dict[str, dict[str, float]]]:
        """{method: {subject: {metric: value}}} for the low-dose input and every method, one metric code."""
        scores: dict[str, dict[str, dict[str, float]]] = {"low dose": {}}
        for case in cases:
            scores["low dose"][case.subject] = image_metrics(case.low, case.full, case.mask)
        for method, paths in predictions.items():
            scores[method] = {}
            for case in cases:
                if case.subject in paths:
                    scores[method][case.subject] = image_metrics(
                        load_ras_volume(paths[case.subject]), case.full, case.mask
                    )
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
        baseline_preds = apply_leave_one_out(
            datalist,
            self.runs_dir / "baselines",
            self.baselines,
            self.tracking_uri,
            "paper-baselines",
            test_subjects=test_subjects,
        )
        ablations = self.run_ablations()
        timings = self._timings(datalist) if self.timing else {}
        cases = [c for c in load_cases(items) if test_subjects is None or c.subject in test_subjects]
        predictions: dict[str, dict[str, str]] = {
            name.upper() if name != "gaussian" else "Gaussian": p for name, p in baseline_preds.items()
        }
        if acnet_cv is not None:
            predictions["AC-Net"] = self._network_predictions(acnet_cv.output_dir)
        predictions["proposed"] = self._network_predictions(main_cv.output_dir)
        scores = self.score(cases, predictions)
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
