"""Leave-one-out cross-validation folds and the check that the test subject never leaks into training."""

from __future__ import annotations

from typing import Any

from ..errors import InputDataError
from .datalist import load_datalist
from .fingerprint import DUPLICATE_CORRELATION, fingerprint, similarity
from .rigid_similarity import RIGID_DUPLICATE_CORRELATION, coarse_fingerprint, rigid_similarity

__all__ = ["loocv_split", "assert_fold_isolation"]


def assert_fold_isolation(
    train: list[dict], val: list[dict], test: list[dict], keys: tuple[str, ...] = ("image", "label")
) -> None:
    """Refuse a fold whose test subject is in the training or validation data: by name, or by content, as an exact
    or near copy (a few voxels changed, other units, flipped or transposed; `fingerprint`), or moved by a few voxels
    or turned by a few degrees (`rigid_similarity`)."""
    test_names = {item["subject"] for item in test}
    for role, items in (("training", train), ("validation", val)):
        clash = test_names & {item["subject"] for item in items}
        if clash:
            raise InputDataError(f"fold isolation: test subject(s) {sorted(clash)} also in the {role} data")
    tests = [(item["subject"], k, item[k], fingerprint(item[k])) for item in test for k in keys if k in item]
    for role, items in (("training", train), ("validation", val)):
        for item in items:
            for k in (k for k in keys if k in item):
                mine = fingerprint(item[k])
                for subject, key, path, theirs in tests:
                    r = similarity(theirs, mine)
                    if r >= DUPLICATE_CORRELATION:
                        raise InputDataError(
                            f"fold isolation: {role} subject '{item['subject']}' {k} {item[k]} is a copy of test "
                            f"subject '{subject}' {key} {path} (correlation {r:.4f}, up to scale and flips)"
                        )
    _assert_no_moved_copy(train, val, test)


def _assert_no_moved_copy(train: list[dict], val: list[dict], test: list[dict], key: str = "image") -> None:
    """Refuse a training or validation image that is the test subject's image moved by a few voxels or turned by a
    few degrees (`rigid_similarity`)."""
    tests = [(item["subject"], item[key], coarse_fingerprint(item[key])) for item in test if key in item]
    for role, items in (("training", train), ("validation", val)):
        for item in (i for i in items if key in i):
            mine = coarse_fingerprint(item[key])
            for subject, path, theirs in tests:
                r = rigid_similarity(theirs, mine)
                if r >= RIGID_DUPLICATE_CORRELATION:
                    raise InputDataError(
                        f"fold isolation: {role} subject '{item['subject']}' {key} {item[key]} is a moved or turned "
                        f"copy of test subject '{subject}' {path} (correlation {r:.4f} after a rigid alignment)"
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
