#!/usr/bin/env python
"""Two noise estimators' reports on the same studies (each `scripts/evaluate_noise_estimator.py`'s results.json),
side by side: per test set, each one's RMS error in log2 noise and the paired difference of their squared errors
over subjects, with its 95 % bootstrap CI; prints a markdown table.

    python scripts/compare_noise_estimators.py broad=docs/generalist/noise_estimator_broad/results.json \\
        narrow=docs/generalist/noise_estimator_broad/narrow/results.json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser, named_paths
from bundle.errors import ConfigValueError, cli_errors


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reports", nargs=2, help="NAME=RESULTS_JSON of each estimator (the first is a in a - b)")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.io import read_json
    from bundle.noise_estimation.evaluation import estimator_comparison_rows
    from bundle.tables import format_table

    reports = named_paths(args.reports, "reports", "RESULTS_JSON", skip_missing=False)
    if len(reports) != 2:
        raise ConfigValueError(f"setting reports: two distinct names are needed, got {args.reports}")
    names = tuple(reports)
    records = [read_json(path, "noise estimator report")["records"] for path in reports.values()]
    rows = estimator_comparison_rows(records[0], records[1], names)  # type: ignore[arg-type]
    print(format_table(rows, list(rows[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
