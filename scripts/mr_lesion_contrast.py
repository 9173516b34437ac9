#!/usr/bin/env python
"""Each lesion kind's mean T1 and FLAIR over white matter in an MR cohort, lesion by lesion (which kinds the MR alone
tells apart); prints a table and writes it to OUT/README.md, the rows to OUT/contrast.json.

    python scripts/mr_lesion_contrast.py --datalist data/cohorts/paper_mr/datalist.json \
        --out docs/generalist/mr_guided_gated/contrast_paper_mr
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="mr_lesion_contrast.py", description=__doc__.splitlines()[0])
    p.add_argument("--datalist", required=True, help="an MR cohort (scripts/simulate_mr.py) with its lesion map")
    p.add_argument("--out", required=True, help="folder for README.md and contrast.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT/contrast.json")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.generalist.mr_lesion_contrast import mr_contrast_by_lesion_kind
    from bundle.io import ensure_writable_dir
    from bundle.tables import refuse_existing_report, write_table_report

    out = ensure_writable_dir(args.out, "setting out")
    refuse_existing_report(out, "contrast.json", args.overwrite)
    start = time.perf_counter()
    rows = mr_contrast_by_lesion_kind(args.datalist)
    lines = ["| lesion kind | MR | n | mean over white matter | min | max |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['channel']} | {r['n']} | {r['mean']:.2f} | {r['min']:.2f} | {r['max']:.2f} |")
    command = "python scripts/mr_lesion_contrast.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    title = f"Lesion contrast on the MR of {args.datalist}"
    minutes = (time.perf_counter() - start) / 60
    record = {"datalist": args.datalist, "rows": rows}
    write_table_report(out, "contrast.json", record, title, "\n".join(lines), command, minutes, args.overwrite)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
