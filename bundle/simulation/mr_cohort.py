"""Give a simulated cohort an MR as a scanner would acquire it (`mr_imaging.simulate_mr`), without touching its PET.

The output folder holds, per subject, `sub-XXX/sub-XXX_t1.nii.gz`, `_flair.nii.gz` and `_lesion_mask.nii.gz` (the
cohort's lesion map plus the MR-only lesions), then `manifest.json` (the settings and what was drawn per subject) and,
written last, `datalist.json`: the source datalist's items with every file path made relative to the output folder,
and `t1`, `flair`, `lesion` and `lesion_kinds` replaced by the MR cohort's own. The PET, masks and truth stay the
source cohort's files. Subject k of the source datalist draws its MR from the stream (seed, k, 7).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping

import nibabel as nib
import numpy as np

from ..data import lesion_kinds, load_datalist
from ..data.datalist import is_path_key
from ..errors import ConfigValueError, InputDataError, OutputExistsError
from ..io import ensure_writable_dir, read_json, save_nifti, write_json
from .mr_imaging import MR_RANGES, simulate_mr

__all__ = ["MR_STREAM", "ensure_mr_cohort", "simulate_mr_cohort", "validated_ranges"]

logger = logging.getLogger(__name__)
MR_STREAM = 7  # the simulator's streams 0-6 are the PET's (dataset.py)
NEEDED_KEYS = ("t1", "tissue", "mask", "lesion")


def validated_ranges(overrides: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """`MR_RANGES` with `overrides` (setting name -> (low, high)), or a one-line error naming a bad setting."""
    ranges = dict(MR_RANGES)
    for name, value in overrides.items():
        if name not in ranges:
            raise ConfigValueError(f"setting {name}: not an MR range (expected one of {sorted(ranges)})")
        low, high = (float(v) for v in value)
        if not 0.0 <= low <= high:
            raise ConfigValueError(f"setting {name}: expected 0 <= low <= high, got {low:g} {high:g}")
        ranges[name] = (low, high)
    return ranges


def _relative(path: str, out: Path) -> str:
    return os.path.relpath(path, start=out.resolve())


def simulate_mr_cohort(
    datalist: str | Path,
    out: str | Path,
    seed: int = 0,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the MR cohort of `datalist` into `out` (module docstring); returns the new datalist's path."""
    ranges = dict(ranges or MR_RANGES)
    source = Path(datalist)
    items = load_datalist(source)
    kinds_of = lesion_kinds(source)
    for item in items:
        missing = [key for key in NEEDED_KEYS if key not in item]
        if missing:
            raise InputDataError(f"datalist {source}: subject {item['subject']} has no {missing} (needed for its MR)")
    folder = ensure_writable_dir(out, "setting out")
    target = folder / "datalist.json"
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target}: an MR cohort is already there; use --overwrite or another --out")
    content = read_json(source, "datalist")
    records, new_items, new_kinds = {}, [], {}
    for index, item in enumerate(items):
        subject = item["subject"]
        t1_image = nib.as_closest_canonical(nib.load(item["t1"]))
        voxel_size = tuple(float(v) for v in t1_image.header.get_zooms()[:3])
        volumes = {key: np.asarray(nib.as_closest_canonical(nib.load(item[key])).dataobj) for key in NEEDED_KEYS[1:]}
        mr = simulate_mr(
            np.asarray(t1_image.get_fdata(dtype=np.float32)),
            volumes["tissue"].astype(np.uint8),
            volumes["mask"] > 0,
            volumes["lesion"].astype(np.int32),
            kinds_of.get(subject, {}),
            voxel_size,
            np.random.default_rng([int(seed), index, MR_STREAM]),
            ranges,
        )
        files = {}
        for key, array in (("t1", mr.t1), ("flair", mr.flair), ("lesion", mr.lesion_mask.astype(np.uint8))):
            name = "lesion_mask" if key == "lesion" else key
            path = folder / subject / f"{subject}_{name}.nii.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            save_nifti(array, t1_image.affine, path, overwrite=overwrite)
            files[key] = f"{subject}/{path.name}"
        kept = {key: (_relative(value, folder) if is_path_key(key) else value) for key, value in item.items()}
        new_items.append({**kept, **files})
        new_kinds[subject] = mr.lesion_kinds
        records[subject] = mr.record
        logger.info("%s: MR simulated (misregistration %.2f mm)", subject, mr.record["misregistration_rms_mm"])
    settings = {"source_datalist": _relative(str(source), folder), "seed": int(seed), "ranges": ranges}
    write_json({"settings": settings, "subjects": records}, folder / "manifest.json", overwrite=True)
    section = {key: value for key, value in content.items() if key not in ("training", "lesion_kinds")}
    modality = dict(section.get("modality", {}), t1="MR T1 (acquired: noise, bias, misregistration)", flair="MR FLAIR")
    write_json(
        {**section, "modality": modality, "mr": settings, "training": new_items, "lesion_kinds": new_kinds},
        target,
        overwrite=overwrite,
    )
    return target


def ensure_mr_cohort(
    out: str | Path, source_datalist: str | Path, seed: int, overrides: Mapping[str, tuple[float, float]] | None = None
) -> str:
    """The MR cohort's datalist in `out`, simulated first from `source_datalist` with `seed` and `MR_RANGES` changed by
    `overrides` (setting name -> (low, high)) when it is missing; one made from another source, seed or ranges is
    refused (one line), so a profile never trains on an MR it did not ask for."""
    ranges = validated_ranges(overrides or {})
    target = Path(out) / "datalist.json"
    if not target.is_file():
        return str(simulate_mr_cohort(source_datalist, out, seed, ranges))
    settings = read_json(target, "datalist").get("mr", {})
    expected = _relative(str(source_datalist), Path(out))
    if settings.get("seed") != int(seed) or settings.get("source_datalist") != expected:
        raise InputDataError(
            f"{target}: an MR cohort of {settings.get('source_datalist')} with seed {settings.get('seed')} is there, "
            f"not of {expected} with seed {seed}; move it away or choose another folder"
        )
    recorded = {name: tuple(float(v) for v in value) for name, value in settings.get("ranges", {}).items()}
    changed = sorted(name for name, value in ranges.items() if recorded.get(name, value) != tuple(value))
    if changed:
        raise InputDataError(
            f"{target}: an MR cohort with other {', '.join(changed)} ranges is there "
            f"({', '.join(f'{n} {list(recorded[n])}' for n in changed)}); move it away or choose another folder"
        )
    return str(target)
