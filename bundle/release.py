"""Ship a model: one cross-validation fold's or a generalist run's selected checkpoint as `models/model.pt`, with where
it came from (`model_provenance.json`), its test results in `configs/metadata.json` (`eval_metrics`) and fresh
exports; everything is read and checked first, then published as one transaction (`publish.publish_release`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import InputDataError
from .io import file_sha256, read_json
from .publish import publish_release
from .weights import PROVENANCE_FILE, load_checkpoint, network_state

__all__ = ["archive_shipped", "cv_eval_metrics", "restate_generalist", "ship_fold_checkpoint", "ship_generalist"]

METHODS = ("low_dose", "gaussian", "network")
METRICS = ("nrmse", "psnr", "ssim")
ESTIMATOR_SUBJECTS = 8  # training subjects the noise-variance DRF fit reads when the report has none (as 0.2.x's)
RUN_FITS = ("detail_gain",)  # what a training run's best_provenance.json records that a release carries over


def cv_eval_metrics(loocv_dir: str | Path) -> dict[str, Any]:
    """Mean and sd over the leave-one-out test subjects, read from every fold's `result.json`."""
    from .tables import summarise

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
    exports: bool = False,
    keep_previous: str | Path | None = None,
) -> dict[str, Any]:
    """Ship fold `fold`'s model-selected weights as `models/model.pt` and update the metadata; returns the record.

    `model.pt` is a plain state dict, as model-zoo bundles ship it (`monai.bundle.load` and `ckpt_export` read it
    without `key_in_ckpt`); the checkpoint's epoch and validation metric go to `model_provenance.json`. Everything is
    read and checked before anything is written, and the files are published together (`publish_release`).
    """
    folder = Path(loocv_dir)
    result = read_json(folder / f"fold{fold}" / "result.json", f"fold {fold} result")
    source = folder / f"fold{fold}" / "checkpoints" / "best.pt"
    if not source.is_file():
        raise InputDataError(f"--fold {fold}: {source} not found (the fold has no selected checkpoint)")
    config = read_json(folder / f"fold{fold}" / "config.json", f"fold {fold} config")
    for key in ("test_subject", "metrics"):
        if key not in result:
            raise InputDataError(f"fold {fold} result {folder / f'fold{fold}' / 'result.json'}: no '{key}'")
    checkpoint = load_checkpoint(source)
    metrics = cv_eval_metrics(folder)
    noise_level = _trained_noise_level(config, result.get("training_subjects") or [])
    record = {
        "source": str(source),
        "source_sha256": file_sha256(source),
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
    meta = read_json(meta_file, "metadata file")
    meta["eval_metrics"] = {k: v for k, v in metrics.items() if k != "protocol"}  # the zoo expects numbers only
    meta["eval_protocol"] = metrics["protocol"]
    export_overrides = _network_overrides(config) if exports else None
    return publish_release(
        models_dir, meta_file, network_state(checkpoint), record, meta, export_overrides, overwrite, keep_previous
    )


def _network_overrides(settings: dict[str, Any]) -> dict[str, Any]:
    """The inference config's network form for these settings (imported here: MONAI loads only when exporting)."""
    from .deploy.study_denoiser import network_overrides

    return network_overrides(settings)


def _trained_noise_level(config: dict[str, Any], subjects: list[str]) -> dict[str, Any] | None:
    """The noise-level range of the fold's training subjects (for the inference's noise check), when its datalist
    can be read from the fold's config; None otherwise."""
    if "datalist_file" not in config or not subjects:
        return None
    from monai.bundle import ConfigParser

    from .data import load_datalist
    from .deploy.noise_check import trained_noise_level

    datalist = ConfigParser(config).get_parsed_content("datalist_file")
    items = [item for item in load_datalist(datalist) if item["subject"] in set(subjects)]
    return trained_noise_level(items) if items else None


def ship_generalist(
    run_dir: str | Path,
    report_file: str | Path,
    models_dir: str | Path = "models",
    meta_file: str | Path = "configs/metadata.json",
    command: str = "",
    overwrite: bool = False,
    exports: bool = True,
    keep_previous: str | Path | None = None,
) -> dict[str, Any]:
    """Ship a generalist run's model-selected weights (`checkpoints/best.pt`) as `models/model.pt`, with a provenance
    that names its training cohort, settings, test results (`report_file`: `evaluate_generalist.py`'s results.json,
    which must name the sha256 of these very weights), the noise-level range it was trained on (every dose level)
    and, for a dose-conditioned model, the DRF estimator; with the fits recorded for these weights in the run's
    `best_provenance.json` (the detail gain) and fresh TorchScript and ONNX exports, all published together
    (`publish_release`). Nothing is written before everything is read and checked."""
    from .data import at_dose, dose_levels, load_datalist
    from .deploy.noise_check import trained_noise_level

    folder = Path(run_dir) / "checkpoints"
    source = folder / "best.pt"
    if not source.is_file():
        raise InputDataError(f"--generalist-run {run_dir}: {source} not found (the run has no selected checkpoint)")
    manifest = read_json(folder / "manifest.json", "checkpoint manifest")
    settings = manifest.get("settings", {})
    source_sha = file_sha256(source)
    name, report = _checked_report(report_file, folder, source_sha)
    fits = _run_fits(folder)
    datalist = settings.get("datalist_file")
    items = load_datalist(datalist)
    levels = dose_levels(items)
    noise = trained_noise_level([i for drf in levels for i in at_dose(items, drf)])
    noise["subjects"] = sorted({i["subject"] for i in items})
    checkpoint = load_checkpoint(source)
    conditioned = str(settings.get("dose_conditioning")) == "True"
    record = {
        "model": "generalist",
        "source": str(source),
        "source_sha256": source_sha,
        "checkpoint": {k: v for k, v in checkpoint.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
        "dose_conditioning": conditioned,
        "training_datalist": datalist,
        "training_settings": settings,
        "versions": manifest.get("versions"),
        "git_commit": manifest.get("git_commit"),
        "test_report": {"file": str(report_file), "command": report.get("command"), "method": name},
        "test_summary": _generalist_summary(report["records"], name),
        "trained_noise_level": noise,
        "drf_estimator": _drf_estimator(report, datalist, levels) if conditioned else None,
        "command": command,
        **fits,
    }
    meta = _with_test_results(read_json(meta_file, "metadata file"), record, report, report_file, datalist, levels)
    image = meta["network_data_format"]["inputs"]["image"]
    image["num_channels"] = 4 if conditioned else 3
    image["channel_def"] = {
        "0": "low-dose PET, slice z-1",
        "1": "low-dose PET, slice z",
        "2": "low-dose PET, slice z+1",
        **({"3": "dose code log(DRF)/log(200), constant"} if conditioned else {}),
    }
    export_overrides = dict(_network_overrides(settings), dose_conditioning=conditioned) if exports else None
    return publish_release(
        models_dir, meta_file, network_state(checkpoint), record, meta, export_overrides, overwrite, keep_previous
    )


def restate_generalist(
    report_file: str | Path,
    models_dir: str | Path = "models",
    meta_file: str | Path = "configs/metadata.json",
    command: str = "",
    exports: bool = True,
) -> dict[str, Any]:
    """Restate the shipped generalist weights' test results from a new report of the same weights, after an inference
    default changed (bundle 0.3.1: the sub-grid detail gain read from each study): the provenance's `test_report` and
    `test_summary` (the replaced report kept under `earlier_test_reports`), the metadata's `eval_metrics` and
    `eval_protocol` and, with `exports`, the TorchScript and ONNX exports made again (the TorchScript file embeds the
    metadata), published together; the weights are not touched. The report must have measured these weights (the
    sha256 of `model.pt` or of the checkpoint it was shipped from)."""
    models = Path(models_dir)
    provenance = models / PROVENANCE_FILE
    record = read_json(provenance, "model provenance")
    if record.get("model") != "generalist":
        raise InputDataError(f"{provenance}: the shipped model is not a generalist run; only one can be restated")
    shipped_sha = file_sha256(models / "model.pt") if (models / "model.pt").is_file() else None
    if shipped_sha is None or record.get("sha256") != shipped_sha:
        raise InputDataError(f"{provenance}: does not describe {models / 'model.pt'} (sha256 differs or file missing)")
    report = read_json(report_file, "generalist report")
    measured = (report.get("weights_sha256") or {}) if isinstance(report, dict) else {}
    same = {shipped_sha, record.get("source_sha256")}
    name = next((n for n, sha in measured.items() if sha in same), None)
    if name is None:
        raise InputDataError(
            f"--report {report_file}: measured none of the shipped weights (sha256 {shipped_sha[:12]}...); "
            "evaluate models/model.pt again"
        )
    _require_paper_records(report, report_file, name)
    earlier = list(record.get("earlier_test_reports") or []) + [record.get("test_report")]
    record = dict(
        record,
        test_report={"file": str(report_file), "command": report.get("command"), "method": name},
        test_summary=_generalist_summary(report["records"], name),
        earlier_test_reports=[e for e in earlier if e],
        restated_by=command,
    )
    settings = record.get("training_settings") or {}
    levels = [float(d) for d in json.loads(str(settings.get("train_drfs", "[]")))] or [2.0, 200.0]
    meta = _with_test_results(
        read_json(meta_file, "metadata file"), record, report, report_file, record["training_datalist"], levels
    )
    export_overrides = None
    if exports:
        export_overrides = dict(_network_overrides(settings), dose_conditioning=bool(record.get("dose_conditioning")))
    record = {k: v for k, v in record.items() if k not in ("weights", "sha256", "exports")}  # written afresh
    return publish_release(models, meta_file, None, record, meta, export_overrides)


def _with_test_results(
    meta: dict[str, Any],
    record: dict[str, Any],
    report: dict[str, Any],
    report_file: str | Path,
    datalist: str,
    levels: list[float],
) -> dict[str, Any]:
    """`meta` with the release's `eval_metrics` (numbers only, as the zoo expects) and the protocol they follow."""
    meta = dict(meta)
    meta["eval_metrics"] = {k: v for k, v in record["test_summary"].items() if isinstance(v, (int, float))}
    test_sets = sorted({r["test_set"] for r in report["records"]} - {"paper"})
    meta["eval_protocol"] = (
        f"generalist model: trained on the {Path(datalist).parent.name} cohort at DRF {min(levels):g}-{max(levels):g}, "
        "tested on the paper's 9 subjects"
        + "".join(f" and the {name} cohort" for name in test_sets)
        + f" ({Path(report_file).parent}/README.md); mean PSNR inside the brain mask"
    )
    return meta


def _drf_estimator(report: dict[str, Any], datalist: str, levels: list[float]) -> dict[str, Any]:
    """Bundle 0.2's noise-variance DRF fit for `drf: 'auto'`: the report's (`evaluate_generalist.py --estimated-drf`),
    else fitted here on the first `ESTIMATOR_SUBJECTS` subjects of the weights' own training cohort at every DRF."""
    if report.get("drf_estimator"):
        return report["drf_estimator"]
    from .generalist.study import fit_cohort_drf_estimator

    fit = fit_cohort_drf_estimator(datalist, levels, ESTIMATOR_SUBJECTS)
    return {**fit, "cohort": datalist, "subjects": ESTIMATOR_SUBJECTS}


def _run_fits(checkpoints: Path) -> dict[str, Any]:
    """The fits recorded for the run's weights in `<checkpoints>/best_provenance.json` (its `detail_gain`), carried
    into the release; refused in one line when that file describes other weights."""
    from .deploy.export import run_provenance

    return {key: value for key, value in run_provenance(checkpoints).items() if key in RUN_FITS}


def _checked_report(report_file: str | Path, checkpoints: Path, weights_sha256: str) -> tuple[str, dict[str, Any]]:
    """(the run's name in the report, the report), refusing a report that does not describe these weights."""
    report = read_json(report_file, "generalist report")
    if not isinstance(report, dict) or not isinstance(report.get("records"), list) or not report["records"]:
        raise InputDataError(f"--report {report_file}: no evaluation records; run evaluate_generalist.py on the run")
    name = next(
        (n for n, path in (report.get("runs") or {}).items() if Path(path).resolve() == checkpoints.resolve()), None
    )
    if name is None:
        raise InputDataError(
            f"--report {report_file}: does not evaluate {checkpoints}; run evaluate_generalist.py on it"
        )
    measured = (report.get("weights_sha256") or {}).get(name)
    if measured != weights_sha256:
        raise InputDataError(
            f"--report {report_file}: measured weights with sha256 {str(measured)[:12]}..., not "
            f"{checkpoints / 'best.pt'} ({weights_sha256[:12]}...); evaluate these weights again"
        )
    _require_paper_records(report, report_file, name)
    return name, report


def _require_paper_records(report: dict[str, Any], report_file: str | Path, name: str) -> None:
    """Refuse (one line) a report without paper-subject records of the run `name`, which the release summarises."""
    if not any(r.get("method") == name and r.get("test_set") == "paper" for r in report.get("records") or []):
        raise InputDataError(f"--report {report_file}: holds no paper-subject records of '{name}'")


def _generalist_summary(records: list[dict[str, Any]], method: str) -> dict[str, float]:
    """Mean PSNR of the input, the tuned Gaussian and the model per test set and DRF, e.g. `paper_drf200_model_psnr`."""
    from collections import defaultdict

    import numpy as np

    values: dict[str, list[float]] = defaultdict(list)
    names = {"low dose": "input", "gaussian": "gaussian", method: "model"}
    for r in records:
        if r["method"] in names:
            values[f"{r['test_set'].replace('-', '_')}_drf{r['drf']:g}_{names[r['method']]}_psnr"].append(r["psnr"])
    return {key: round(float(np.mean(v)), 3) for key, v in values.items()}


def archive_shipped(models_dir: str | Path, destination: str | Path, overwrite: bool = False) -> list[Path]:
    """Copy the shipped weights, their exports and provenance into `destination` (a variant folder such as
    `models/variants/paper_loocv`), where they stay verifiable (the provenance records each file's sha256)."""
    import shutil

    from .io import atomic_path

    source, target = Path(models_dir), Path(destination)
    names = ["model.pt", "model.ts", "model.onnx", "model_provenance.json"]
    present = [n for n in names if (source / n).is_file()]
    if "model.pt" not in present:
        raise InputDataError(f"--keep-previous: {source / 'model.pt'} not found; there is nothing to keep")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in present:
        with atomic_path(target / name, overwrite=overwrite) as tmp:
            shutil.copyfile(source / name, tmp)
        written.append(target / name)
    return written
