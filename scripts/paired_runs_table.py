#!/usr/bin/env python
"""Print runs side by side against a reference run from an evaluate_generalist report (per test set and DRF: mean
PSNR, paired differences with 95 % bootstrap CIs, subjects below their input, smallest gain, hot SUVmean bias).

    python scripts/paired_runs_table.py docs/generalist/dose_blind/results.json --reference shipped --runs blind-balanced blind
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import ConfigValueError, cli_errors


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="paired_runs_table.py", description=__doc__.splitlines()[0])
    p.add_argument("results", help="OUT/results.json of scripts/evaluate_generalist.py")
    p.add_argument("--reference", default="shipped", help="the run every other is paired against")
    p.add_argument("--runs", nargs="+", required=True, help="the runs to compare with it")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.generalist.paired_runs import paired_runs_markdown, paired_runs_rows
    from bundle.generalist.report import records_by_cell

    records, cells = records_by_cell(args.results)
    known = {r["method"] for r in records}
    missing = [m for m in (args.reference, *args.runs) if m not in known]
    if missing:
        raise ConfigValueError(f"{args.results}: no records of {missing} (methods there: {sorted(known)})")
    print(paired_runs_markdown(paired_runs_rows(cells, args.reference, args.runs), args.reference, args.runs), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
