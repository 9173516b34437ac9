"""Leave-one-out cross-validation: every fold trains and evaluates through the bundle's own configs.

For fold k the test subject is subject k; the training config's split gives the validation subject(s) and
the training subjects, and the fold is refused if the test subject is in either (by name or voxel content).

Every fold is one MLflow run ("fold<k>-<subject>") in one experiment, holding all config values as params,
per-epoch training loss and validation metrics (logged by the training config's handlers), the final test
metrics, and artifacts (config, checkpoint, metrics CSV, PNG panel). A "summary" run logs mean and sd over
folds with the per-subject table. A fold is complete when `<output>/fold<k>/result.json` exists; re-running
skips complete folds and resumes an interrupted one from its last epoch.

The test subject is evaluated at every dose level the datalist names (`image_drf<D>`, into `fold<k>/eval_drf<D>/`)
besides `image` itself (`fold<k>/eval/`), each baseline tuned at that level on the fold's training subjects; test
metrics at DRF D are logged as `test_drf<D>_*`. A complete fold that lacks an evaluation (e.g. a dose level added
to the dataset later) gets it from its checkpoint without training again. The summary adds the per-dose, lesion,
regional and paired-statistics tables (`quantification`).
"""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import ConfigValueError
from .evaluation import RECORDS_FILE
from .io import clean_stale_temporaries, ensure_writable_dir, read_json, write_json, write_text
from .mlflow_tracking import TrackingStore, check_tracking_store, default_tracking_uri, flatten_config
from .quantification import summary_metrics
from .quantification.cv_summary import cv_summary
from .tables import write_csv

__all__ = ["CrossValidation"]

logger = logging.getLogger(__name__)


class CrossValidation:
    """Run leave-one-out folds of the bundle's training and evaluation configs.

    Args:
        config_files: training config(s), e.g. ['configs/train.json'] or with a profile override file.
        evaluate_file: the evaluation config merged on top of `config_files`.
        output_dir: where folds, the summary and (by default) the MLflow SQLite store go.
        overrides: config overrides applied to every fold (id -> value).
        tracking_uri: MLflow tracking URI (default: SQLite under `output_dir`); a server URI also works.
        experiment_name: MLflow experiment holding one run per fold and the summary run.
        baselines: baselines tuned on each fold's training subjects and evaluated beside the network.
        dose_levels: the dose levels the test subject is evaluated at besides `image`: "all" (every `image_drf<D>`
            of the datalist) or a list of DRFs (empty: `image` only).
    """

    def __init__(
        self,
        config_files: Sequence[str],
        output_dir: str | Path,
        evaluate_file: str = "configs/evaluate.json",
        overrides: dict[str, Any] | None = None,
        tracking_uri: str | None = None,
        experiment_name: str = "uldpet-loocv",
        baselines: Sequence[str] = ("gaussian",),
        progress: bool = False,
        dose_levels: str | Sequence[float] = "all",
    ) -> None:
        self.config_files = [str(c) for c in config_files]
        for f in [*self.config_files, evaluate_file]:
            if not Path(f).is_file():
                raise ConfigValueError(f"setting config_file: {f} does not exist")
        self.evaluate_file = str(evaluate_file)
        self.output_dir = ensure_writable_dir(output_dir, "output folder")
        for stale in clean_stale_temporaries(self.output_dir):
            logger.info("removed %s, left by an interrupted run", stale)
        self.overrides = dict(overrides or {})
        self.tracking_uri = tracking_uri or default_tracking_uri(self.output_dir)
        check_tracking_store(self.tracking_uri)
        self.experiment_name = experiment_name
        self.baselines = list(baselines)
        self.progress = progress
        if isinstance(dose_levels, str) and dose_levels != "all":
            raise ConfigValueError(f"setting dose_levels: expected 'all' or a list of DRFs, got {dose_levels!r}")
        self.dose_levels = dose_levels if isinstance(dose_levels, str) else [float(d) for d in dose_levels]
        self._store: TrackingStore | None = None

    @property
    def store(self) -> TrackingStore:
        """The MLflow experiment every fold and the summary are logged to."""
        if self._store is None:
            self._store = TrackingStore(self.tracking_uri, self.experiment_name)
        return self._store

    # -- configuration -------------------------------------------------------------------------------
    def workflow(self, files: Sequence[str], fold: int, workflow_type: str | None = None, **extra: Any):
        """A ConfigWorkflow of `files` for fold `fold` with this study's overrides (plus `extra`)."""
        from monai.bundle import ConfigWorkflow

        overrides = dict(self.overrides)
        overrides.update(
            {
                "fold": fold,
                "output_dir": str(self.output_dir / f"fold{fold}"),
                "progress": self.progress,
                "tracking#tracking_uri": self.tracking_uri,
                "tracking#experiment_name": self.experiment_name,
            }
        )
        overrides.update(extra)
        return ConfigWorkflow(config_file=list(files), workflow_type=workflow_type, logging_file=False, **overrides)

    def datalist_file(self) -> str:
        wf = self.workflow(self.config_files, 0, None)
        wf.initialize()
        return wf.parser.get_parsed_content("datalist_file")

    def subjects(self) -> list[str]:
        """Subject ids in datalist order (fold k tests subject k)."""
        from .data import load_datalist

        return [item["subject"] for item in load_datalist(self.datalist_file())]

    def evaluations(
        self, test_item: dict[str, Any], datalist_file: str
    ) -> dict[str, tuple[float | None, float | None]]:
        """{eval folder: (eval_drf override, the DRF of its low-dose image)} for one test subject: `eval` for
        `image`, `eval_drf<D>` for every other dose level (a level whose image is `image` itself is `eval`)."""
        from .data import datalist_drf, dose_key, dose_levels

        available = dose_levels([test_item])
        wanted = available if self.dose_levels == "all" else [d for d in self.dose_levels if d in available]
        missing = [] if self.dose_levels == "all" else [d for d in self.dose_levels if d not in available]
        if missing:
            raise ConfigValueError(
                f"setting dose_levels: {missing} not in the datalist {datalist_file} (it names {available})"
            )
        primary = datalist_drf(datalist_file)
        out: dict[str, tuple[float | None, float | None]] = {"eval": (None, primary)}
        for drf in wanted:
            if test_item[dose_key(drf)] == test_item["image"]:
                out["eval"] = (None, drf)
            elif drf != primary:
                out[f"eval_drf{drf:g}"] = (drf, drf)
        return out

    def evaluate(self, fold: int, folder: str, eval_drf: float | None, dose: float | None) -> dict[str, Any]:
        """Evaluate fold `fold`'s checkpoint on its test subject into `fold<k>/<folder>`; returns the subject's row."""
        extra: dict[str, Any] = {"baselines": self.baselines, "overwrite": True, "eval_drf": eval_drf}
        if eval_drf is None:
            extra["eval_dose"] = dose
        eval_wf = self.workflow([*self.config_files, self.evaluate_file], fold, None, **extra)
        eval_wf.initialize()
        rows = eval_wf.run()[-1]
        if folder == "eval":
            write_json(eval_wf.parser.config, self.output_dir / f"fold{fold}" / "config.json", overwrite=True)
        del eval_wf
        gc.collect()
        return dict(rows[0])

    # -- folds -----------------------------------------------------------------------------------------
    def fold_result_path(self, fold: int) -> Path:
        return self.output_dir / f"fold{fold}" / "result.json"

    def complete_evaluations(self, fold: int, result: dict[str, Any]) -> dict[str, Any]:
        """A complete fold's result with every evaluation it lacks run from its checkpoint (and logged)."""
        from .data import load_datalist

        datalist = self.datalist_file()
        item = load_datalist(datalist)[fold]
        wanted = self.evaluations(item, datalist)
        fold_dir = self.output_dir / f"fold{fold}"
        todo = {f: v for f, v in wanted.items() if not (fold_dir / f / RECORDS_FILE).is_file()}
        if not todo:
            return result
        logger.info("fold %d: evaluating %s from its checkpoint", fold, sorted(todo))
        rows = {folder: self.evaluate(fold, folder, *spec) for folder, spec in todo.items()}
        result = dict(result)
        if "eval" in rows:
            result["metrics"] = dict(rows["eval"], fold=fold, train_seconds=result["metrics"].get("train_seconds"))
        result["evaluations"] = {f: {"eval_drf": v[0], "drf": v[1]} for f, v in wanted.items()}
        run_id = self.store.run_by_id_or_name(result.get("run_id"), f"fold{fold}-{result['test_subject']}")
        self._log_evaluations(run_id, fold_dir, rows)
        self.store.finish(run_id)
        write_json(dict(result, run_id=run_id), self.fold_result_path(fold), overwrite=True)
        return result

    def _log_evaluations(self, run_id: str, fold_dir: Path, rows: dict[str, dict[str, Any]]) -> None:
        """Each evaluation's test metrics (`test_*` for `eval`, `test_drf<D>_*` for `eval_drf<D>`) and files."""
        for folder, row in rows.items():
            prefix = "test_" if folder == "eval" else f"test_{folder[len('eval_'):]}_"
            self.store.log_metrics_once(run_id, {f"{prefix}{k}": v for k, v in row.items() if isinstance(v, float)})
            artifacts = "metrics" if folder == "eval" else f"metrics/{folder}"
            files = ("metrics_per_subject.csv", "regions_per_subject.csv", "lesions_per_subject.csv", RECORDS_FILE)
            self.store.log_artifacts(run_id, [(fold_dir / folder / f, artifacts) for f in files])

    def run_fold(self, fold: int) -> dict[str, Any]:
        """Train and evaluate one fold (resuming if interrupted); returns its result."""
        done = self.fold_result_path(fold)
        if done.is_file():
            logger.info("fold %d already complete: %s", fold, done)
            return self.complete_evaluations(fold, read_json(done, "fold result"))
        start = time.perf_counter()
        train_wf = self.workflow(self.config_files, fold, None)
        train_wf.initialize()
        split = train_wf.parser.get_parsed_content("split")  # checks fold isolation
        train_wf_datalist = train_wf.parser.get_parsed_content("datalist_file")
        run_name = train_wf.parser.get_parsed_content("tracking#run_name")
        run_id = self.store.run(run_name)
        self.store.log_params(run_id, flatten_config(train_wf.parser.config, prefix="config."))
        self.store.set_tags(run_id, {"fold": fold, "test_subject": split["test_subject"]})
        train_wf.run()
        train_wf.finalize()
        train_seconds = time.perf_counter() - start
        del train_wf
        gc.collect()

        wanted = self.evaluations(split["test"][0], train_wf_datalist)
        rows = {folder: self.evaluate(fold, folder, *spec) for folder, spec in wanted.items()}
        fold_dir = self.output_dir / f"fold{fold}"
        row = dict(rows["eval"])
        row.update({"fold": fold, "train_seconds": round(train_seconds, 1)})
        rows["eval"] = row
        self._log_evaluations(run_id, fold_dir, rows)
        checkpoints, evaluation = fold_dir / "checkpoints", fold_dir / "eval"
        self.store.log_artifacts(
            run_id,
            [
                (fold_dir / "config.json", "config"),
                (checkpoints / "best.pt", "checkpoints"),
                (checkpoints / "model.pt", "checkpoints"),
                (checkpoints / "history.csv", "metrics"),
                (evaluation / "metrics_per_slice.csv", "metrics"),
                (evaluation / "panels" / f"{split['test_subject']}.png", "figures"),
            ],
        )
        self.store.finish(run_id)
        result = {
            "fold": fold,
            "test_subject": split["test_subject"],
            "run_id": run_id,
            "metrics": row,
            "evaluations": {f: {"eval_drf": v[0], "drf": v[1]} for f, v in wanted.items()},
            "validation_subjects": [i["subject"] for i in split["val"]],
            "training_subjects": [i["subject"] for i in split["train"]],
        }
        write_json(result, done, overwrite=False)
        logger.info("fold %d (%s) done in %.0f s", fold, split["test_subject"], time.perf_counter() - start)
        return result

    def run(self, folds: Iterable[int] | None = None, summary: bool = True) -> dict[str, Any] | None:
        """Run the given folds (default all) and, when every fold is complete, the summary."""
        folds = self.check_folds(folds)
        for fold in folds:
            self.run_fold(fold)
        n = len(self.subjects())
        complete = all(self.fold_result_path(f).is_file() for f in range(n))
        return self.write_summary(n) if summary and complete else None

    def check_folds(self, folds: Iterable[int] | None = None) -> list[int]:
        """The folds to run (default all), after refusing one out of range or whose test subject lacks a dose level
        to evaluate, before anything trains."""
        from .data import load_datalist

        datalist = self.datalist_file()
        items = load_datalist(datalist)
        n = len(items)
        folds = list(range(n)) if folds is None else list(folds)
        bad = [f for f in folds if not 0 <= f < n]
        if bad:
            raise ConfigValueError(f"setting folds: {bad} outside 0..{n - 1} for {n} subjects")
        for fold in folds:
            self.evaluations(items[fold], datalist)
        return folds

    def write_summary(self, n_folds: int) -> dict[str, Any]:
        """Per-subject table and mean +/- sd over folds (`quantification.cv_summary`): CSV, markdown, and an MLflow
        summary run."""
        results = [read_json(self.fold_result_path(f), "fold result") for f in range(n_folds)]
        rows = [r["metrics"] for r in results]
        records = self.records(n_folds)
        summary = cv_summary(rows, records, self.baselines)
        stats, table = summary["stats"], summary["table"]
        write_csv(rows, self.output_dir / "summary_per_subject.csv", overwrite=True)
        write_json(records, self.output_dir / "summary_records.json", overwrite=True)
        write_text(summary["markdown"], self.output_dir / "summary.md", overwrite=True)
        print(table, flush=True)
        run_id = self.store.replace_run("summary")  # the summary is derived: replace it, never append to it
        self.store.log_metrics_once(run_id, {f"{k}_{s}": v[s] for k, v in stats.items() for s in ("mean", "sd")})
        self.store.log_metrics_once(run_id, summary_metrics(records))
        self.store.log_artifacts(
            run_id,
            [
                (self.output_dir / "summary_per_subject.csv", None),
                (self.output_dir / "summary.md", None),
                (self.output_dir / "summary_records.json", None),
            ],
        )
        self.store.finish(run_id)
        return {"rows": rows, "stats": stats, "table": table, "records": records}

    def records(self, n_folds: int) -> list[dict[str, Any]]:
        """Every evaluation record of every fold's test subject, at every dose level evaluated."""
        out = []
        for fold in range(n_folds):
            result = read_json(self.fold_result_path(fold), "fold result")
            for folder in result.get("evaluations", {"eval": {}}):
                path = self.output_dir / f"fold{fold}" / folder / RECORDS_FILE
                if path.is_file():
                    out += read_json(path, "evaluation records")
        return out
