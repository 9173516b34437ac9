"""The split of a training cohort for a model whose test sets are other datasets (the generalist model): the last
subjects validate at a few dose levels, the rest train, and no test subject may be in either."""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import InputDataError
from .datalist import at_dose, load_datalist
from .folds import assert_fold_isolation

__all__ = ["cohort_split"]


def cohort_split(
    datalist_file: str,
    num_val: int = 2,
    val_drfs: Sequence[float] = (4.0, 20.0, 200.0),
    test_datalists: Sequence[str] = (),
) -> dict[str, Any]:
    """{'train': items, 'val': the last `num_val` subjects at each of `val_drfs`, 'test': every test datalist's items,
    'test_subject': a label of the test sets}. Refuses a split where a test subject is a training or validation one
    (by name within one dataset, or by content: `assert_fold_isolation`)."""
    items = load_datalist(datalist_file)
    if isinstance(num_val, bool) or not isinstance(num_val, int) or not 0 <= num_val <= len(items) - 1:
        raise InputDataError(f"setting num_val_subjects: expected an integer in [0, {len(items) - 1}], got {num_val!r}")
    train, val_subjects = items[: len(items) - num_val], items[len(items) - num_val :]
    val = [item for drf in val_drfs for item in at_dose(val_subjects, float(drf))]
    tests: list[dict[str, Any]] = []
    for k, path in enumerate(test_datalists):
        tests += [dict(item, subject=f"test{k}:{item['subject']}") for item in load_datalist(path)]
    if tests:
        assert_fold_isolation(train, val_subjects, tests)
    return {"train": train, "val": val, "test": tests, "test_subject": "held-out datasets"}
