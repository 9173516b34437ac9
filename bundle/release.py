"""Ship a cross-validated model: copy one fold's selected checkpoint to `models/`, record where it came from,
and write the cross-validation results into `configs/metadata.json` (`eval_metrics`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import InputDataError
from .io import file_sha256, read_json, write_json
from .loocv import summarise
from .weights import load_checkpoint, network_state, save_weights

__all__ = ["cv_eval_metrics", "ship_fold_checkpoint"]

METHODS = ("low_dose", "gaussian", "network")
METRICS = ("nrmse", "psnr", "ssim")


def cv_eval_metrics(loocv_dir: str | Path) -> dict[str, Any]:
    """Mean and sd over the leave-one-out test subjects, read from every fold's `result.json`."""
    folder = Path(loocv_dir)
    results = sorted(folder.glob("fold*/result.json"), key=lambda p: int(p.parent.name[4:]))
    if not results:
        raise InputDataError(f"--loocv-dir {folder}: no finished folds (fold*/result.json)")
    rows = [read_json(p, "fold result")["metrics"] for p in results]
    stats = summarise(rows)
    out: dict[str, Any] = {
        "protocol": f"leave-one-out cross-validation, {len(rows)} folds, test subject of each fold, "
        "whole volume inside the brain mask"
    }
    for method in METHODS:
        for metric in METRICS:
            key = f"{method}_{metric}"
            if key in stats:
                out[f"mean_{key}"] = round(stats[key]["mean"], 4)
                out[f"sd_{key}"] = round(stats[key]["sd"], 4)
    return out


def ship_fold_checkpoint(
    loocv_dir: str | Path,
    fold: int,
    models_dir: str | Path = "models",
    meta_file: str | Path = "configs/metadata.json",
    command: str = "",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Ship fold `fold`'s model-selected weights as `models/model.pt` and update the metadata; returns the record.

    `model.pt` is a plain state dict, as model-zoo bundles ship it (`monai.bundle.load` and `ckpt_export` read it
    without `key_in_ckpt`); the checkpoint's epoch and validation metric go to `model_provenance.json`.
    """
    folder = Path(loocv_dir)
    result = read_json(folder / f"fold{fold}" / "result.json", f"fold {fold} result")
    source = folder / f"fold{fold}" / "checkpoints" / "best.pt"
    if not source.is_file():
        raise InputDataError(f"--fold {fold}: {source} not found (the fold has no selected checkpoint)")
    config = read_json(folder / f"fold{fold}" / "config.json", f"fold {fold} config")
    target = Path(models_dir) / "model.pt"
    checkpoint = load_checkpoint(source)
    save_weights(network_state(checkpoint), target, overwrite=overwrite)
    metrics = cv_eval_metrics(folder)
    noise_level = _trained_noise_level(config, result.get("training_subjects") or [])
    record = {
        "weights": str(target),
        "sha256": file_sha256(target),
        "source": str(source),
        "checkpoint": {k: v for k, v in checkpoint.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
        "fold": fold,
        "test_subject": result["test_subject"],
        "validation_subjects": result.get("validation_subjects"),
        "training_subjects": result.get("training_subjects"),
        "fold_test_metrics": result["metrics"],
        "profile": config.get("profile"),
        "dataset": {k: config.get(k) for k in ("dataset_dir", "simulation", "datalist_file")},
        "command": command,
        "cross_validation": metrics,
        "trained_noise_level": noise_level,
    }
    write_json(record, Path(models_dir) / "model_provenance.json", overwrite=True)
    meta = read_json(meta_file, "metadata file")
    meta["eval_metrics"] = {k: v for k, v in metrics.items() if k != "protocol"}  # the zoo expects numbers only
    meta["eval_protocol"] = metrics["protocol"]
    write_json(meta, meta_file, overwrite=True)
    return record


def _trained_noise_level(config: dict[str, Any], subjects: list[str]) -> dict[str, Any] | None:
    """The noise-level range of the fold's training subjects (for the inference's noise check), when its datalist
    can be read from the fold's config; None otherwise."""
    from monai.bundle import ConfigParser

    from .data import load_datalist
    from .deploy.noise_check import trained_noise_level

    if "datalist_file" not in config or not subjects:
        return None
    datalist = ConfigParser(config).get_parsed_content("datalist_file")
    items = [item for item in load_datalist(datalist) if item["subject"] in set(subjects)]
    return trained_noise_level(items) if items else None
