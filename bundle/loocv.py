"""Leave-one-out cross-validation: every fold trains and evaluates through the bundle's own configs.

For fold k the test subject is subject k; the training config's split gives the validation subject(s) and
the training subjects, and the fold is refused if the test subject is in either (by name or voxel content).

Every fold is one MLflow run ("fold<k>-<subject>") in one experiment, holding all config values as params,
per-epoch training loss and validation metrics (logged by the training config's handlers), the final test
metrics, and artifacts (config, checkpoint, metrics CSV, PNG panel). A "summary" run logs mean and sd over
folds with the per-subject table. A fold is complete when `<output>/fold<k>/result.json` exists; re-running
skips complete folds and resumes an interrupted one from its last epoch.
"""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import ConfigValueError
from .io import ensure_writable_dir, read_json, write_json, write_text
from .mlflow_tracking import TrackingStore, default_tracking_uri, flatten_config
from .tables import format_table, write_csv

__all__ = ["CrossValidation", "summarise"]

logger = logging.getLogger(__name__)
METRICS = ("nrmse", "psnr", "ssim")


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and sample sd over subjects of every numeric column."""
    out: dict[str, dict[str, float]] = {}
    for key in rows[0]:
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        if values and key != "fold":
            arr = np.asarray(values, dtype=float)
            out[key] = {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}
    return out


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
    ) -> None:
        self.config_files = [str(c) for c in config_files]
        for f in [*self.config_files, evaluate_file]:
            if not Path(f).is_file():
                raise ConfigValueError(f"setting config_file: {f} does not exist")
        self.evaluate_file = str(evaluate_file)
        self.output_dir = ensure_writable_dir(output_dir, "output folder")
        self.overrides = dict(overrides or {})
        self.tracking_uri = tracking_uri or default_tracking_uri(self.output_dir)
        self.experiment_name = experiment_name
        self.baselines = list(baselines)
        self.progress = progress
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

    def subjects(self) -> list[str]:
        """Subject ids in datalist order (fold k tests subject k)."""
        from .data import load_datalist

        wf = self.workflow(self.config_files, 0, None)
        wf.initialize()
        items = load_datalist(wf.parser.get_parsed_content("datalist_file"))
        return [item["subject"] for item in items]

    # -- folds -----------------------------------------------------------------------------------------
    def fold_result_path(self, fold: int) -> Path:
        return self.output_dir / f"fold{fold}" / "result.json"

    def run_fold(self, fold: int) -> dict[str, Any]:
        """Train and evaluate one fold (resuming if interrupted); returns its result."""
        done = self.fold_result_path(fold)
        if done.is_file():
            logger.info("fold %d already complete: %s", fold, done)
            return read_json(done, "fold result")
        start = time.perf_counter()
        train_wf = self.workflow(self.config_files, fold, None)
        train_wf.initialize()
        split = train_wf.parser.get_parsed_content("split")  # checks fold isolation
        run_name = train_wf.parser.get_parsed_content("tracking#run_name")
        run_id = self.store.run(run_name)
        self.store.log_params(run_id, flatten_config(train_wf.parser.config, prefix="config."))
        self.store.set_tags(run_id, {"fold": fold, "test_subject": split["test_subject"]})
        train_wf.run()
        train_wf.finalize()
        train_seconds = time.perf_counter() - start
        del train_wf
        gc.collect()

        eval_wf = self.workflow(
            [*self.config_files, self.evaluate_file], fold, None, baselines=self.baselines, overwrite=True
        )
        eval_wf.initialize()
        rows = eval_wf.run()[-1]
        config_snapshot = eval_wf.parser.config
        del eval_wf
        gc.collect()

        fold_dir = self.output_dir / f"fold{fold}"
        row = dict(rows[0])
        row.update({"fold": fold, "train_seconds": round(train_seconds, 1)})
        self.store.log_metrics_once(run_id, {f"test_{k}": v for k, v in row.items() if isinstance(v, float)})
        write_json(config_snapshot, fold_dir / "config.json", overwrite=True)
        checkpoints, evaluation = fold_dir / "checkpoints", fold_dir / "eval"
        self.store.log_artifacts(
            run_id,
            [
                (fold_dir / "config.json", "config"),
                (checkpoints / "best.pt", "checkpoints"),
                (checkpoints / "model.pt", "checkpoints"),
                (checkpoints / "history.csv", "metrics"),
                (evaluation / "metrics_per_subject.csv", "metrics"),
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
            "validation_subjects": [i["subject"] for i in split["val"]],
            "training_subjects": [i["subject"] for i in split["train"]],
        }
        write_json(result, done, overwrite=False)
        logger.info("fold %d (%s) done in %.0f s", fold, split["test_subject"], time.perf_counter() - start)
        return result

    def run(self, folds: Iterable[int] | None = None, summary: bool = True) -> dict[str, Any] | None:
        """Run the given folds (default all) and, when every fold is complete, the summary."""
        n = len(self.subjects())
        folds = list(range(n)) if folds is None else list(folds)
        bad = [f for f in folds if not 0 <= f < n]
        if bad:
            raise ConfigValueError(f"setting folds: {bad} outside 0..{n - 1} for {n} subjects")
        for fold in folds:
            self.run_fold(fold)
        complete = all(self.fold_result_path(f).is_file() for f in range(n))
        return self.write_summary(n) if summary and complete else None

    def write_summary(self, n_folds: int) -> dict[str, Any]:
        """Per-subject table and mean +/- sd over folds: CSV, markdown, and an MLflow summary run."""
        results = [read_json(self.fold_result_path(f), "fold result") for f in range(n_folds)]
        rows = [r["metrics"] for r in results]
        stats = summarise(rows)
        write_csv(rows, self.output_dir / "summary_per_subject.csv", overwrite=True)
        methods = [m for m in ("low_dose", *self.baselines, "network") if f"{m}_psnr" in rows[0]]
        columns = ["subject"] + [f"{m}_{k}" for k in METRICS for m in methods]
        mean_row = {"subject": "mean"} | {c: stats[c]["mean"] for c in columns[1:]}
        sd_row = {"subject": "sd"} | {c: stats[c]["sd"] for c in columns[1:]}
        table = format_table([*rows, mean_row, sd_row], columns)
        write_text(table + "\n", self.output_dir / "summary.md", overwrite=True)
        print(table, flush=True)
        run_id = self.store.replace_run("summary")  # the summary is derived: replace it, never append to it
        self.store.log_metrics_once(run_id, {f"{k}_{s}": v[s] for k, v in stats.items() for s in ("mean", "sd")})
        self.store.log_artifacts(
            run_id, [(self.output_dir / "summary_per_subject.csv", None), (self.output_dir / "summary.md", None)]
        )
        self.store.finish(run_id)
        return {"rows": rows, "stats": stats, "table": table}
