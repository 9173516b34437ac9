"""Publish a release as one transaction: the weights, their TorchScript and ONNX exports (checked against eager, each
recording the sha256 of the weights it was made from), the provenance and the bundle metadata, all staged and then
published together (`release_transaction`), so that an interrupted release leaves the old model or the new one,
never a mix, and an export can never outlive the weights it came from."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from .errors import InputDataError, OutputExistsError
from .io import file_sha256, write_json
from .release_transaction import ReleaseTransaction, recover
from .weights import PROVENANCE_FILE, save_weights

__all__ = ["EXPORT_TOLERANCE", "publish_exports", "publish_release"]

logger = logging.getLogger(__name__)

EXPORT_TOLERANCE = 1e-5  # max |export - eager| relative to the output's range


def _exports(
    tx: ReleaseTransaction,
    targets: Mapping[str, Path],
    staged_weights: Path,
    staged_meta: Path | None,
    overrides: dict | None,
    config_file: str | Path | None = None,
) -> dict:
    """Stage the exports `targets` ({'torchscript' | 'onnx': final path}) made from `staged_weights`, checked against
    eager; returns their provenance entries by file name."""
    from .deploy.export import check_exports, export_onnx, export_record, export_torchscript, load_inference_network
    from .deploy.study_denoiser import INFERENCE_CONFIG

    config = str(config_file or INFERENCE_CONFIG)
    net = load_inference_network(config, str(staged_weights), overrides=overrides, verify=False)
    staged: dict[str, Path] = {}
    if "torchscript" in targets:
        with tx.staged_file(targets["torchscript"]) as path:
            export_torchscript(net, path, None if staged_meta is None else str(staged_meta), config, overwrite=True)
        staged["torchscript"] = path
    if "onnx" in targets:
        with tx.staged_file(targets["onnx"]) as path:
            export_onnx(net, path, net.in_channels, overwrite=True)
        staged["onnx"] = path
    diffs = check_exports(net, net.in_channels, staged.get("torchscript"), staged.get("onnx"))
    for kind, value in diffs.items():
        logger.info("%s: max |export - eager| / range = %.2e (tolerance %.0e)", kind, value, EXPORT_TOLERANCE)
    bad = {k: f"{v:.1e}" for k, v in diffs.items() if v >= EXPORT_TOLERANCE}
    if bad:
        raise InputDataError(f"export: {bad} differ from eager PyTorch beyond {EXPORT_TOLERANCE:.0e}")
    weights_sha = file_sha256(staged_weights)
    return {Path(targets[k]).name: export_record(p, weights_sha) for k, p in staged.items()}


def publish_exports(
    weights: str | Path,
    targets: Mapping[str, str | Path],
    config_file: str | Path,
    meta_file: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export `weights` ({'torchscript' | 'onnx': path}) and, for the shipped weights of a provenance, record the
    exports beside them in it; exports and provenance are published together. Returns the exports' entries."""
    from .io import read_json
    from .weights import verify_shipped_file

    weights = Path(weights)
    for path in targets.values():
        if Path(path).exists() and not overwrite:
            raise OutputExistsError(f"{path}: already exists; pass the overwrite switch to replace it")
    shipped = verify_shipped_file(weights)
    folders = {Path(p).resolve().parent for p in targets.values()}
    with ReleaseTransaction(weights.parent, other_dirs=tuple(folders)) as tx:
        entries = _exports(tx, {k: Path(v) for k, v in targets.items()}, weights, meta_file, None, config_file)
        if shipped:
            provenance = weights.parent / PROVENANCE_FILE
            record = read_json(provenance, "model provenance")
            beside = {Path(p).name for p in targets.values() if Path(p).resolve().parent == weights.resolve().parent}
            record["exports"] = dict(record.get("exports") or {}, **{n: e for n, e in entries.items() if n in beside})
            with tx.staged_file(provenance) as staged:
                write_json(record, staged, overwrite=True)
        tx.commit()
    return entries


def publish_release(
    models_dir: str | Path,
    meta_file: str | Path,
    weights: Mapping[str, Any] | None,
    record: dict[str, Any],
    meta: dict[str, Any],
    export_overrides: dict[str, Any] | None = None,
    overwrite: bool = False,
    keep_previous: str | Path | None = None,
) -> dict[str, Any]:
    """Write `weights` (a state dict) as `models_dir/model.pt`, its provenance (`record` plus the weights' and the
    exports' sha256), `meta` into `meta_file` and, with `export_overrides` (inference-config overrides giving the
    network's form), fresh exports; all published together. `keep_previous` first archives the release being
    replaced. With `weights` None the shipped `model.pt` stays as it is and the rest is written for it (a
    restatement). Returns the provenance record.

    Raises:
        OutputExistsError: `model.pt` exists, `weights` are given and `overwrite` is False (checked before anything
            is written).
    """
    from .release import archive_shipped

    models = Path(models_dir)
    recover(models)  # an earlier release killed after its commit point is finished first
    target = models / "model.pt"
    if weights is not None and target.exists() and not overwrite:
        raise OutputExistsError(f"{target}: already exists; pass --overwrite to replace the shipped weights")
    if weights is None and not target.is_file():
        raise InputDataError(f"{target}: not found; there are no shipped weights to restate")
    if keep_previous:
        archive_shipped(models, keep_previous, overwrite=overwrite)
    with ReleaseTransaction(models, other_dirs=(Path(meta_file).parent,)) as tx:
        if weights is None:
            staged_weights = target
        else:
            with tx.staged_file(target) as staged_weights:
                save_weights(weights, staged_weights, overwrite=True)
        with tx.staged_file(meta_file) as staged_meta:
            write_json(meta, staged_meta, overwrite=True)
        record = dict(record, weights=str(target), sha256=file_sha256(staged_weights))
        if export_overrides is not None:
            targets = {"torchscript": models / "model.ts", "onnx": models / "model.onnx"}
            record["exports"] = _exports(tx, targets, staged_weights, staged_meta, export_overrides)
        with tx.staged_file(models / PROVENANCE_FILE) as staged_provenance:
            write_json(record, staged_provenance, overwrite=True)
        tx.commit()
    return record
