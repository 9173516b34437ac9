"""Tune per fold, then apply: every baseline's parameters are chosen on a fold's training subjects only and the
tuned filter is applied to that fold's test subject.

Two uses share the one procedure (`tune_on`):
- `tuned_baselines`: one fold's baselines, tuned on its training items, for the evaluation workflow;
- `apply_leave_one_out`: every subject as a test subject of its own leave-one-out fold, predictions saved as
  NIfTI with a record of the chosen parameters, each fold logged to MLflow (the paper's comparison).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import nibabel as nib
import numpy as np

from ..data import at_dose, load_datalist
from ..io import read_json, save_nifti, write_json
from .base import Baseline
from .registry import make_baseline
from .tuning import Case, TunedBaseline, grid_edge_keys, load_cases, score_grid, select_parameters

__all__ = ["apply_leave_one_out", "tune_on", "tuned_baselines", "tuned_records", "tuning_budget"]

logger = logging.getLogger(__name__)


def _scores(method: Baseline, cases: Sequence[Case], tuning_slices: int | None, cache_file: Path | None = None):
    return score_grid(method, method.default_grid, cases, slices_per_case=tuning_slices, cache_file=cache_file)


def tune_on(method: Baseline, scores: np.ndarray, train_columns: Sequence[int]) -> dict[str, Any]:
    """The parameters with the best mean score over the training columns (the test subject is never consulted)."""
    return select_parameters(scores, method.default_grid, list(train_columns))


def tuned_baselines(
    names: Sequence[str], training_items: Sequence[dict[str, Any]], slow_tuning_slices: int | None = None
) -> dict[str, TunedBaseline]:
    """Each named baseline tuned on `training_items` (never the test subject), by name.

    `slow_tuning_slices` overrides the tuning budget of the slice-by-slice methods (those with `tuning_slices`).
    """
    methods = [make_baseline(n) for n in names]
    if not methods:
        return {}
    cases = load_cases(training_items)
    out = {}
    for method in methods:
        budget = method.tuning_slices if method.tuning_slices is None else (slow_tuning_slices or method.tuning_slices)
        params = tune_on(method, _scores(method, cases, budget), range(len(cases)))
        logger.info("baseline %s tuned on %d training subjects: %s", method.name, len(cases), params)
        out[method.name] = TunedBaseline(method.name, method, params)
    return out


def apply_leave_one_out(
    datalist_file: str | Path,
    out_dir: str | Path,
    methods: Sequence[str] = ("gaussian", "nlm", "bm3d"),
    tracking_uri: str | None = None,
    experiment_name: str = "baselines",
    test_subjects: Sequence[str] | None = None,
    drf: float | None = None,
) -> dict[str, dict[str, str]]:
    """Predictions of each baseline for every subject (or only `test_subjects`), each tuned without that subject, on
    the datalist's `image` or, with `drf`, on its images at that dose level (`image_drf<D>`).

    Returns: {method: {subject: prediction path}}. Existing predictions are reused (the run resumes); a reused
    prediction not yet in the MLflow experiment is logged from its record.
    """
    baselines = [make_baseline(m) for m in methods]
    items = at_dose(load_datalist(datalist_file), drf)
    cases = load_cases(items)
    suffix = "" if drf is None else f"-drf{drf:g}"
    out = Path(out_dir)
    store = None
    if tracking_uri is not None:
        from ..mlflow_tracking import TrackingStore

        store = TrackingStore(tracking_uri, experiment_name)
    predictions: dict[str, dict[str, str]] = {}
    for method in baselines:
        name, grid = method.name, method.default_grid
        budget = tuning_budget(method, drf)
        predictions[name] = {}
        tested = [k for k, c in enumerate(cases) if test_subjects is None or c.subject in test_subjects]
        todo = [k for k in tested if not _reusable(out / name / f"{cases[k].subject}_{name}", grid, budget, method)]
        scores = None
        if todo:
            started = time.perf_counter()
            scores = _scores(method, cases, budget, out / name / "tuning_scores.json")
            logger.info(
                "%s: scored %d settings on %d subjects in %.0f s",
                name,
                len(grid),
                len(cases),
                time.perf_counter() - started,
            )
        for k in tested:
            case = cases[k]
            pred_path = out / name / f"{case.subject}_{name}.nii.gz"
            if k in todo:
                params = tune_on(method, scores, [j for j in range(len(cases)) if j != k])
                started = time.perf_counter()
                pred = method(case.low, case.voxel_size_mm, **params)
                seconds = time.perf_counter() - started
                affine = nib.as_closest_canonical(nib.load(items[k]["image"])).affine
                save_nifti(pred.astype(np.float32), affine, pred_path, overwrite=True, units="Bq/mL")
                record = {
                    "method": name,
                    "fold": k,
                    "test_subject": case.subject,
                    "params": params,
                    "tuned_on": [c.subject for j, c in enumerate(cases) if j != k],
                    "seconds": seconds,
                    "grid": grid,
                    "at_grid_edge": grid_edge_keys(params, grid),
                }
                record["drf"] = drf
                record["tuning_slices"] = budget
                write_json(record, out / name / f"{case.subject}_{name}.json", overwrite=True)
                if store is not None:
                    _log_record(store, f"{name}-fold{k}-{case.subject}{suffix}", record)
            elif store is not None and not store.runs_named(f"{name}-fold{k}-{case.subject}{suffix}"):
                _log_record(
                    store,
                    f"{name}-fold{k}-{case.subject}{suffix}",
                    read_json(out / name / f"{case.subject}_{name}.json", "baseline record"),
                )
            predictions[name][case.subject] = str(pred_path)
    return predictions


def _log_record(store: Any, run_name: str, record: dict[str, Any]) -> None:
    """One MLflow run per baseline fold: its tuned parameters, test subject, dose level and time."""
    run_id = store.replace_run(run_name)
    keys = ("method", "fold", "test_subject", "drf")
    store.log_params(run_id, {**record["params"], **{k: record.get(k) for k in keys}})
    store.log_metrics_once(run_id, {"seconds": record["seconds"]})
    store.finish(run_id)


def tuning_budget(method: Baseline, drf: float | None) -> int | None:
    """Slices per subject a baseline is tuned on: its `tuning_slices` for the datalist's `image`, and its optional
    `other_dose_tuning_slices` at the other dose levels (a slow filter's time grows with every level)."""
    return method.tuning_slices if drf is None else getattr(method, "other_dose_tuning_slices", method.tuning_slices)


def _reusable(stem: Path, grid: Sequence[dict[str, Any]], budget: int | None, method: Baseline) -> bool:
    """A saved prediction is reused only when it exists and was tuned over the current grid and budget (a record
    from before budgets were recorded used the method's `tuning_slices`)."""
    record, image = stem.parent / f"{stem.name}.json", stem.parent / f"{stem.name}.nii.gz"
    if not (record.is_file() and image.is_file()):
        return False
    saved = read_json(record, "baseline record")
    if saved.get("grid") != json.loads(json.dumps(grid)):
        logger.info("%s was not tuned over the current grid: tuning again", record)
        return False
    if saved.get("tuning_slices", method.tuning_slices) != budget:
        logger.info("%s was tuned on another number of slices: tuning again", record)
        return False
    return True


def tuned_records(out_dir: str | Path, method: str) -> dict[str, dict[str, Any]]:
    """The saved record (parameters, training subjects, grid) of each test subject."""
    return {
        p.name[: -len(f"_{method}.json")]: read_json(p, "baseline record")
        for p in sorted((Path(out_dir) / method).glob(f"*_{method}.json"))
    }
