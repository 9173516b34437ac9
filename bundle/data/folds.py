"""Leave-one-out cross-validation folds and the check that the test subject never leaks into training."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputDataError
from .datalist import load_datalist

__all__ = ["loocv_split", "assert_fold_isolation", "content_hash"]


@lru_cache(maxsize=256)
def _hash_file_content(path: str, mtime_ns: int) -> str:
    from monai.transforms import LoadImage

    try:
        array = np.asarray(LoadImage(image_only=True)(path), dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise InputDataError(f"{path}: cannot be read as an image ({type(exc).__name__})") from exc
    return hashlib.sha256(array.tobytes()).hexdigest()


def content_hash(path: str) -> str:
    """sha256 of a volume's voxel values (independent of file compression or format)."""
    return _hash_file_content(str(path), Path(path).stat().st_mtime_ns)


def assert_fold_isolation(
    train: list[dict], val: list[dict], test: list[dict], keys: tuple[str, ...] = ("image", "label")
) -> None:
    """Refuse a fold whose test subject is in the training or validation data, by name or by image content."""
    test_names = {item["subject"] for item in test}
    for role, items in (("training", train), ("validation", val)):
        clash = test_names & {item["subject"] for item in items}
        if clash:
            raise InputDataError(f"fold isolation: test subject(s) {sorted(clash)} also in the {role} data")
    test_hashes = {content_hash(item[k]): (item["subject"], k) for item in test for k in keys if k in item}
    for role, items in (("training", train), ("validation", val)):
        for item in items:
            for k in keys:
                if k in item and content_hash(item[k]) in test_hashes:
                    subject, key = test_hashes[content_hash(item[k])]
                    raise InputDataError(
                        f"fold isolation: {role} subject '{item['subject']}' {k} {item[k]} has the same voxels as "
                        f"test subject '{subject}' {key}"
                    )


def loocv_split(datalist_file: str, fold: int, num_val: int = 1, check_isolation: bool = True) -> dict[str, Any]:
    """Leave-one-out fold `fold`: subject `fold` is the test subject; the next `num_val` subjects (cyclically)
    validate and select the model; the rest train. Validation and model selection never see the test subject."""
    items = load_datalist(datalist_file)
    n = len(items)
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < n:
        raise InputDataError(f"setting fold: expected an integer in [0, {n - 1}] for {n} subjects, got {fold!r}")
    if isinstance(num_val, bool) or not isinstance(num_val, int) or not 0 <= num_val <= n - 2:
        raise InputDataError(f"setting num_val_subjects: expected an integer in [0, {n - 2}], got {num_val!r}")
    test = [items[fold]]
    val_idx = [(fold + 1 + j) % n for j in range(num_val)]
    val = [items[i] for i in val_idx]
    train = [items[i] for i in range(n) if i != fold and i not in val_idx]
    if check_isolation:
        assert_fold_isolation(train, val, test)
    return {"train": train, "val": val, "test": test, "fold": fold, "test_subject": test[0]["subject"]}
