"""What the output-rule selection scripts share (`scripts/detail_local_gain.py`, `scripts/hot_uptake_restore.py`):
their common arguments and how their report is written."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["add_selection_arguments", "table_lines", "write_selection_report"]

DRFS = [2.0, 4.0, 10.0, 20.0, 50.0, 100.0, 200.0]


def add_selection_arguments(
    parser: argparse.ArgumentParser, fit_set: str, test_sets: Sequence[str], out: str
) -> argparse.ArgumentParser:
    """--fit-set (the cohort the rule is chosen on), --test-set, --drf, --weights, --subjects and --out."""
    parser.add_argument("--fit-set", default=fit_set, help="NAME=DATALIST the rule is chosen on (never a test set)")
    parser.add_argument("--test-set", nargs="*", default=list(test_sets), help="NAME=DATALIST of each test set")
    parser.add_argument("--drf", nargs="+", type=float, default=list(DRFS))
    parser.add_argument("--weights", default="models/model.pt", help="the network (given the true DRF)")
    parser.add_argument("--subjects", type=int, default=None, help="only the first N subjects of each set")
    parser.add_argument("--out", default=out)
    return parser


def table_lines(tables: Sequence[Sequence[Mapping[str, str]]]) -> list[str]:
    """Each non-empty table as markdown, followed by a blank line."""
    from ..tables import format_table

    return [line for table in tables if table for line in (format_table(list(table), list(table[0])), "")]


def write_selection_report(out: Path, results: Mapping[str, Any], lines: Sequence[str]) -> None:
    """OUT/results.json and OUT/README.md (`lines`), and the report printed."""
    from ..io import write_json, write_text

    write_json(dict(results), out / "results.json", overwrite=True)
    write_text("\n".join(lines) + "\n", out / "README.md", overwrite=True)
    print("\n".join(lines))
