"""The datalist format shared by simulated and user data (MONAI decathlon style).

    {
      "training": [
        {"subject": "sub-001",            # unique id (default: the low-dose file name)
         "image": "sub-001/low.nii.gz",   # low-dose PET (required)
         "label": "sub-001/full.nii.gz",  # full-dose PET (required for training and evaluation)
         "mask":  "sub-001/brain.nii.gz", # optional brain mask (else estimated from image support)
         "t1":    "sub-001/t1.nii.gz",     # optional T1 (for extra input channels or AC-Net)
         "flair": "sub-001/flair.nii.gz",  # optional FLAIR (MR-guided models)
         "lesion": "sub-001/lesions.nii.gz",    # optional lesion label map: 0 background, one integer per lesion
         "truth": "sub-001/truth.nii.gz",       # optional true activity (simulated data)
         "tissue": "sub-001/tissue.nii.gz",     # optional tissue map: 1 grey matter, 2 white matter, 3 CSF
         "image_drf20": "sub-001/drf20.nii.gz"} # optional: the same study at other dose levels (image_drf<D>)
      ],
      "drf": 200,                                   # optional: the dose-reduction factor of `image`
      "lesion_kinds": {"sub-001": {"1": "hot_nodule", "2": "cold"}}  # optional: each lesion label's kind
    }

Relative paths are resolved against the datalist's folder. A path may be a NIfTI file or a DICOM series folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputDataError
from ..io import read_json

__all__ = [
    "DATALIST_KEYS",
    "datalist_drf",
    "dose_levels",
    "lesion_kinds",
    "DOSE_KEY_PREFIX",
    "OPTIONAL_KEYS",
    "at_dose",
    "dose_key",
    "is_path_key",
    "load_datalist",
    "subject_name",
]

DATALIST_KEYS = ("image", "label")
OPTIONAL_KEYS = ("mask", "t1", "flair", "lesion", "truth", "tissue")
DOSE_KEY_PREFIX = "image_drf"  # image_drf20: the low-dose PET at DRF 20 (the nested dose levels of one study)


def dose_key(drf: float) -> str:
    """The datalist key of a study's image at dose-reduction factor `drf`: 'image_drf20', 'image_drf2.5'."""
    value = float(drf)
    return f"{DOSE_KEY_PREFIX}{int(value)}" if value.is_integer() else f"{DOSE_KEY_PREFIX}{value:g}"


def at_dose(items: list[dict[str, Any]], drf: float | None) -> list[dict[str, Any]]:
    """The items with `image` set to their image at DRF `drf` (unchanged when `drf` is None), or a one-line error
    naming the subject and the missing key."""
    if drf is None:
        return list(items)
    if isinstance(drf, bool) or not isinstance(drf, (int, float)) or not float(drf) >= 1.0:
        raise InputDataError(f"setting eval_drf: expected a dose-reduction factor >= 1 or null, got {drf!r}")
    key = dose_key(drf)
    missing = [item["subject"] for item in items if key not in item]
    if missing:
        raise InputDataError(
            f"setting eval_drf: subject(s) {missing} have no '{key}' in the datalist (simulate with --drf ... {drf:g})"
        )
    return [dict(item, image=item[key], drf=float(drf)) for item in items]


def dose_levels(items: list[dict[str, Any]]) -> list[float]:
    """The dose-reduction factors every item has an `image_drf<D>` for, ascending."""
    common: set[float] | None = None
    for item in items:
        levels = {float(k[len(DOSE_KEY_PREFIX) :]) for k in item if k.startswith(DOSE_KEY_PREFIX)}
        common = levels if common is None else common & levels
    return sorted(common or ())


def datalist_drf(path: str | Path) -> float | None:
    """The dose-reduction factor of `image` that a datalist states at its top level (`"drf": 200`), else None."""
    drf = read_json(Path(path), "datalist").get("drf")
    return float(drf) if isinstance(drf, (int, float)) and not isinstance(drf, bool) else None


def lesion_kinds(path: str | Path) -> dict[str, dict[str, str]]:
    """{subject: {lesion label: kind}} from a datalist's optional top-level `lesion_kinds` (used to group the lesion
    tables; labels without a kind are reported as 'lesion'), or a one-line error when it is malformed."""
    value = read_json(Path(path), "datalist").get("lesion_kinds", {})
    ok = isinstance(value, dict) and all(
        isinstance(kinds, dict)
        and all(
            isinstance(k, str) and k.isdigit() and int(k) > 0 and isinstance(v, str) and v for k, v in kinds.items()
        )
        for kinds in value.values()
    )
    if not ok:
        raise InputDataError(
            f"datalist {path}: 'lesion_kinds' must map subjects to {{label: kind}} objects, e.g. "
            '{"sub-001": {"1": "hot_nodule"}}'
        )
    return {str(subject): dict(kinds) for subject, kinds in value.items()}


def is_path_key(key: str) -> bool:
    """Whether a datalist key names a file (resolved against the datalist's folder and checked to exist)."""
    return key in DATALIST_KEYS + OPTIONAL_KEYS or key.startswith(DOSE_KEY_PREFIX)


def subject_name(path: str) -> str:
    """A subject id from a file or folder name: strip .nii/.nii.gz."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii", ".dcm"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def load_datalist(
    path: str | Path, section: str = "training", required: tuple[str, ...] = DATALIST_KEYS
) -> list[dict[str, Any]]:
    """Read and validate a datalist section; returns items with absolute paths and a `subject` id.

    Raises:
        InputDataError: missing file or section, an item without a required key, a duplicate subject,
            or a listed file that does not exist.
    """
    datalist_path = Path(path)
    content = read_json(datalist_path, "datalist")
    if not isinstance(content, dict) or section not in content:
        raise InputDataError(f"datalist {datalist_path}: no '{section}' section")
    items = content[section]
    if not isinstance(items, list) or not items:
        raise InputDataError(f"datalist {datalist_path}: section '{section}' is empty or not a list")
    base = datalist_path.parent
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(items):
        if not isinstance(raw, dict):
            raise InputDataError(f"datalist {datalist_path}: item {i} of '{section}' is not an object")
        missing = [k for k in required if not raw.get(k)]
        if missing:
            raise InputDataError(f"datalist {datalist_path}: item {i} of '{section}' is missing key(s) {missing}")
        item: dict[str, Any] = {}
        for key, value in raw.items():
            if is_path_key(key) and value:
                resolved = Path(value) if Path(value).is_absolute() else base / value
                if not resolved.exists():
                    raise InputDataError(f"datalist {datalist_path}: item {i} '{key}' file {resolved} does not exist")
                item[key] = str(resolved)
            elif not is_path_key(key):
                item[key] = value
        item["subject"] = str(raw.get("subject") or subject_name(item["image"]))
        if item["subject"] in seen:
            raise InputDataError(
                f"datalist {datalist_path}: subject '{item['subject']}' appears twice (items {seen[item['subject']]} and {i})"
            )
        seen[item["subject"]] = i
        out.append(item)
    return out
