"""Classical baselines over the leave-one-out folds: tuned on each fold's training subjects, applied to its
test subject, predictions saved as NIfTI and every fold logged to MLflow."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import nibabel as nib
import numpy as np

from ..baselines import available_methods
from ..baselines.fold_baselines import SLOW_METHOD_SLICES
from ..baselines.tuning import grid_edge_keys, load_cases, score_grid, select_parameters
from ..data import load_datalist
from ..errors import ConfigValueError
from ..io import read_json, save_nifti, write_json

__all__ = ["run_classical_baselines"]

logger = logging.getLogger(__name__)


def run_classical_baselines(
    datalist_file: str | Path,
    out_dir: str | Path,
    methods: Sequence[str] = ("gaussian", "nlm", "bm3d"),
    tracking_uri: str | None = None,
    experiment_name: str = "baselines",
    test_subjects: Sequence[str] | None = None,
) -> dict[str, dict[str, str]]:
    """Predictions of each baseline for every subject (or only `test_subjects`), each tuned without that subject.

    Returns: {method: {subject: prediction path}}. Existing predictions are reused (the run resumes).
    """
    available = available_methods()
    missing = [m for m in methods if m not in available]
    if missing:
        raise ConfigValueError(f"setting baselines: {missing} not available (bm3d needs the optional extra)")
    items = load_datalist(datalist_file)
    cases = load_cases(items)
    out = Path(out_dir)
    client, experiment_id = _mlflow(tracking_uri, experiment_name)
    predictions: dict[str, dict[str, str]] = {}
    for name in methods:
        method = available[name]()
        grid = method.default_grid
        predictions[name] = {}
        tested = [k for k, c in enumerate(cases) if test_subjects is None or c.subject in test_subjects]
        todo = [k for k in tested if not _reusable(out / name / f"{cases[k].subject}_{name}", grid)]
        scores = None
        if todo:
            started = time.perf_counter()
            scores = score_grid(method, grid, cases, slices_per_case=None if name == "gaussian" else SLOW_METHOD_SLICES,
                                cache_file=out / name / "tuning_scores.json")
            logger.info("%s: scored %d settings on %d subjects in %.0f s", name, len(grid), len(cases), time.perf_counter() - started)
        for k in tested:
            case = cases[k]
            pred_path = out / name / f"{case.subject}_{name}.nii.gz"
            record_path = out / name / f"{case.subject}_{name}.json"
            if k in todo:
                params = select_parameters(scores, grid, [j for j in range(len(cases)) if j != k])
                started = time.perf_counter()
                pred = method(case.low, case.voxel_size_mm, **params)
                seconds = time.perf_counter() - started
                affine = nib.as_closest_canonical(nib.load(items[k]["image"])).affine
                save_nifti(pred.astype(np.float32), affine, pred_path, overwrite=True, units="Bq/mL")
                record = {"method": name, "fold": k, "test_subject": case.subject, "params": params,
                          "tuned_on": [c.subject for j, c in enumerate(cases) if j != k], "seconds": seconds,
                          "grid": grid, "at_grid_edge": grid_edge_keys(params, grid)}
                write_json(record, record_path, overwrite=True)
                if client is not None:
                    run = client.create_run(experiment_id, run_name=f"{name}-fold{k}-{case.subject}")
                    for key, value in {**params, "method": name, "fold": k, "test_subject": case.subject}.items():
                        client.log_param(run.info.run_id, key, value)
                    client.log_metric(run.info.run_id, "seconds", seconds)
                    client.set_terminated(run.info.run_id, "FINISHED")
            predictions[name][case.subject] = str(pred_path)
    return predictions


def _reusable(stem: Path, grid: Sequence[dict[str, Any]]) -> bool:
    """A saved prediction is reused only when it exists and was tuned over the current grid."""
    record, image = stem.parent / f"{stem.name}.json", stem.parent / f"{stem.name}.nii.gz"
    if not (record.is_file() and image.is_file()):
        return False
    if read_json(record, "baseline record").get("grid") != json.loads(json.dumps(grid)):
        logger.info("%s was not tuned over the current grid: tuning again", record)
        return False
    return True


def _mlflow(tracking_uri: str | None, experiment_name: str) -> tuple[Any, str | None]:
    if tracking_uri is None:
        return None, None
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment_name)
    return client, exp.experiment_id if exp else client.create_experiment(experiment_name)


def tuned_records(out_dir: str | Path, method: str) -> dict[str, dict[str, Any]]:
    """The saved record (parameters, training subjects, grid) of each test subject."""
    return {p.name[: -len(f"_{method}.json")]: read_json(p, "baseline record")
            for p in sorted((Path(out_dir) / method).glob(f"*_{method}.json"))}
