"""Write a simulated paired low-/full-dose PET dataset: NIfTI volumes, a decathlon-style datalist, a manifest.

Layout of `<out>/`:

- `sub-XXX/sub-XXX_pet_full.nii.gz`: full-dose OSEM image (Bq/mL);
- `sub-XXX/sub-XXX_pet_drf<D>.nii.gz`: low-dose OSEM image at dose-reduction factor D (Bq/mL);
- `sub-XXX/sub-XXX_truth.nii.gz`, `_t1`, `_brain_mask`, `_lesion_mask`, `_tissue` (1 grey, 2 white matter, 3 CSF),
  `_mu_map` (1/cm); the lesion map labels each lesion of the `mix` recipe with its own integer (kinds in the manifest)
  and the legacy `gbm` recipe's lesion as 1 (enhancing rim) and 2 (necrotic core);
- `sub-XXX/sub-XXX_record.json`: written last; marks the subject complete (file checksums, settings hash);
- `datalist.json` (`image` the paper's DRF 200 when simulated, else the first DRF) and `datalist_drf<D>.json` (`image`
  at DRF D); every item also names each level as `image_drf<D>`, and `lesion_kinds` gives each subject's lesion
  labels their kinds ({"sub-001": {"1": "hot_nodule", ...}}); and `manifest.json`.

Dose levels are nested (`acquisition.nested_thinning`): the events of a higher DRF are a subset of those of a lower
DRF, as when one list-mode acquisition is subsampled.

Randomness: subject k draws its anatomy from the stream (seed, k, 0), its counts from (seed, k, 1), the
thinning for DRF D from (seed, k, 2, round(1000 D)), the lesions of the `mix` recipe from (seed, k, 3), the
randomised scanner from (seed, k, 4), the `varied` anatomy's variation from (seed, k, 5), repeated thinnings
from (seed, k, 6, ...) and the `broad` physics from (seed, k, 7). A subject is therefore the same whatever the number of
subjects; its highest DRF is the same whatever the list of DRFs (the DRF-200 images of a DRF-200-only dataset and
of the full chain 2-200 are identical), and each lower DRF builds on the levels above it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..errors import ConfigValueError, InputDataError, OutputExistsError
from ..io import clean_stale_temporaries, ensure_writable_dir, file_sha256, read_json, save_nifti, write_json
from ..provenance import versions
from .presets import SimulationConfig
from .projector import ParallelBeamProjector, default_device
from .subject_volumes import build_projector, drf_tag, simulate_subject_volumes, subject_id

__all__ = ["simulate_dataset", "ensure_dataset", "subject_id", "drf_tag", "lesion_kinds", "simulate_subject_volumes"]

logger = logging.getLogger(__name__)
DATALIST_NAME = "datalist.json"
MANIFEST_NAME = "manifest.json"
PAPER_DRF = 200.0  # the dose reduction of Xu et al.: `image` of datalist.json when simulated
LEGACY_RIM, LEGACY_CORE = "enhancing_rim", "necrotic_core"  # the two labels of the legacy glioblastoma-like lesion


def _settings_hash(config: SimulationConfig) -> str:
    text = json.dumps(config.data_settings(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return default_device()
    if name == "cuda" and not torch.cuda.is_available():
        raise InputDataError("setting device: cuda was requested but no CUDA device is available")
    return torch.device(name)


def _record_path(out: Path, sid: str) -> Path:
    return out / sid / f"{sid}_record.json"


def _is_complete(out: Path, sid: str, settings_hash: str) -> bool:
    """True when the subject's record exists with these settings and every listed file is present."""
    record_file = _record_path(out, sid)
    if not record_file.is_file():
        return False
    record = read_json(record_file, "subject record")
    if record.get("settings_hash") != settings_hash:
        raise OutputExistsError(
            f"{record_file}: this subject was simulated with different settings; use --overwrite or another output folder"
        )
    return all((out / rel).is_file() for rel in record.get("files", {}).values())


def _write_subject(
    out: Path, sid: str, volumes: dict, affine: np.ndarray, info: dict, settings_hash: str, overwrite: bool
) -> dict:
    files = {}
    for name, array in volumes.items():
        rel = f"{sid}/{sid}_{name}.nii.gz"
        units = "Bq/mL" if name.startswith("pet") or name == "truth" else ("1/cm" if name == "mu_map" else None)
        save_nifti(array, affine, out / rel, overwrite=overwrite, units=units)
        files[name] = rel
    record = {
        "subject": sid,
        "settings_hash": settings_hash,
        "files": files,
        "sha256": {name: file_sha256(out / rel) for name, rel in files.items()},
        "info": info,
    }
    write_json(record, _record_path(out, sid), overwrite=True)
    return record


def lesion_kinds(info: dict) -> dict[str, str]:
    """{label: kind} of a subject's lesion map: the mix's kinds as drawn; the legacy lesion's rim and core."""
    described = info.get("lesions", [])
    if any("label" in x for x in described):
        return {str(x["label"]): x["kind"] for x in described}
    return {"1": LEGACY_RIM, "2": LEGACY_CORE} if described else {}


def _datalist(out: Path, records: list[dict], drf: float, config: SimulationConfig) -> dict:
    tag = drf_tag(drf)
    items = [
        {
            "subject": r["subject"],
            "image": r["files"][f"pet_{tag}"],
            **{f"image_{drf_tag(d)}": r["files"][f"pet_{drf_tag(d)}"] for d in config.drfs},
            "label": r["files"]["pet_full"],
            "mask": r["files"]["brain_mask"],
            "t1": r["files"]["t1"],
            "lesion": r["files"]["lesion_mask"],
            "truth": r["files"]["truth"],
            **({"tissue": r["files"]["tissue"]} if "tissue" in r["files"] else {}),
        }
        for r in records
    ]
    return {
        "name": "simulated ultra-low-dose brain FDG PET",
        "description": f"low-dose (DRF {drf:g}) and full-dose OSEM pairs from the bundle's count-level simulator",
        "modality": {"image": "PET low dose", "label": "PET full dose", "t1": "MR T1"},
        "units": "Bq/mL",
        "drf": drf,
        "preset": config.preset,
        "numTraining": len(items),
        "training": items,
        "lesion_kinds": {r["subject"]: lesion_kinds(r["info"]) for r in records},
    }


def _simulate_one(out: Path, k: int, config: SimulationConfig, device: torch.device, settings_hash: str) -> float:
    """Simulate and write subject k; returns its seconds."""
    t0 = time.perf_counter()
    volumes, affine, info = simulate_subject_volumes(k, config, _preset_projector(config, device))
    _write_subject(out, subject_id(k), volumes, affine, info, settings_hash, overwrite=True)
    return round(time.perf_counter() - t0, 2)


def _worker_init(threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to report, in one line
    torch.set_num_threads(threads)


def _simulate_subjects(
    out: Path, todo: list[int], config: SimulationConfig, device: torch.device, settings_hash: str, workers: int
) -> Iterator[tuple[str, float]]:
    """(subject, seconds) as each subject is written: in this process, or in `workers` processes sharing the threads."""
    if workers <= 1 or len(todo) == 1 or device.type != "cpu":
        for k in todo:
            yield subject_id(k), _simulate_one(out, k, config, device, settings_hash)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, torch.get_num_threads() // workers)
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init, initargs=(threads,))
    try:
        futures = {pool.submit(_simulate_one, out, k, config, device, settings_hash): k for k in todo}
        for future in as_completed(futures):
            yield subject_id(futures[future]), future.result()
    except BaseException:  # Ctrl-C or a failed subject: stop the workers now (their partial files are temporaries)
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


@lru_cache(maxsize=1)
def _preset_projector(config: SimulationConfig, device: torch.device) -> ParallelBeamProjector:
    start = time.perf_counter()
    projector = build_projector(config, device)
    logger.info("projector ready in %.1f s on %s", time.perf_counter() - start, device)
    return projector


def simulate_dataset(
    out_dir: str | Path,
    config: SimulationConfig,
    overwrite: bool = False,
    progress: bool = True,
    on_subject: Callable[[str, float], None] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Simulate `config.n_subjects` subjects into `out_dir`, skipping complete ones unless `overwrite`; with
    `workers` > 1 (CPU, `inverse_cdf` counts only), that many subjects at a time in separate processes.

    Returns:
        The manifest written to `<out_dir>/manifest.json`.
    """
    out = ensure_writable_dir(out_dir, "output folder")
    for folder in [out, *(out / subject_id(k) for k in range(config.n_subjects))]:
        for stale in clean_stale_temporaries(folder):
            logger.info("removed %s, left by an interrupted run", stale)
    device = _resolve_device(config.device)
    settings_hash = _settings_hash(config)
    sids = [subject_id(k) for k in range(config.n_subjects)]
    todo = [k for k, sid in enumerate(sids) if overwrite or not _is_complete(out, sid, settings_hash)]
    timings: dict[str, float] = {}
    if workers > 1 and config.count_sampler == "legacy":
        raise ConfigValueError(
            "setting workers: more than one worker needs count_sampler inverse_cdf (the legacy sampler's noise "
            "depends on the thread count, so the data would depend on the number of workers)"
        )
    if todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"simulating ({config.preset})", unit="subject", disable=not progress)
        for sid, seconds in _simulate_subjects(out, todo, config, device, settings_hash, workers):
            timings[sid] = seconds
            bar.update(1)
            if on_subject is not None:
                on_subject(sid, seconds)
        bar.close()
    records = [read_json(_record_path(out, sid), "subject record") for sid in sids]
    default_drf = PAPER_DRF if PAPER_DRF in config.drfs else config.drfs[0]
    for drf in config.drfs:
        datalist = _datalist(out, records, drf, config)
        write_json(datalist, out / f"datalist_{drf_tag(drf)}.json", overwrite=True)
        if drf == default_drf:
            write_json(datalist, out / DATALIST_NAME, overwrite=True)
    manifest = {
        "settings": config.as_dict(),
        "settings_hash": settings_hash,
        "seed": config.seed,
        "subjects": {r["subject"]: r["info"] for r in records},
        "files": {r["subject"]: r["sha256"] for r in records},
        "versions": versions("nilearn"),
        "device": str(device),
        "seconds_per_subject_this_run": timings,
    }
    write_json(manifest, out / MANIFEST_NAME, overwrite=True)
    return manifest


def ensure_dataset(dataset_dir: str | Path, **settings: Any) -> str:
    """Simulate the dataset into `dataset_dir` unless its datalist is already there; returns the datalist path.

    Used by the bundle configs so that the training entry point works on a fresh clone.
    """
    datalist = Path(dataset_dir) / DATALIST_NAME
    config = SimulationConfig(**settings)
    if not datalist.is_file():
        logger.info("no dataset at %s: simulating it (%s)", dataset_dir, settings)
        simulate_dataset(dataset_dir, config)
        return str(datalist)
    manifest = Path(dataset_dir) / MANIFEST_NAME
    present = read_json(manifest, "dataset manifest")["settings"].get("drfs", []) if manifest.is_file() else []
    missing = [d for d in config.drfs if d not in present]
    if manifest.is_file() and missing:
        logger.warning(
            "dataset %s has no images at DRF %s (an older recipe); it is used as it is, and only its own dose levels "
            "are evaluated: simulate it again into another folder to add them",
            dataset_dir,
            ", ".join(f"{d:g}" for d in missing),
        )
    return str(datalist)
