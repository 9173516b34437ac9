#!/usr/bin/env python
"""How far a gated MR-guided run opens its MR channels inside each lesion kind and in the rest of the brain (the
mean gate, 0 shut to 1 open, through the shipped inference path); prints a table and writes it to OUT/README.md, the rows to OUT/gate.json.

    python scripts/mr_gate_reading.py --run runs/generalist/mr-guided-gated-uptake-lesion-l1/checkpoints \
        --datalist data/cohorts/paper_mr/datalist.json --out docs/generalist/mr_guided_gated/gate
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
    p = OneLineArgumentParser(prog="mr_gate_reading.py", description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a gated MR-guided training run's checkpoints folder")
    p.add_argument("--datalist", required=True, help="a test cohort with MR and a lesion map (e.g. paper_mr)")
    p.add_argument("--drf", nargs="+", type=float, default=[20.0, 200.0])
    p.add_argument("--subjects", type=int, default=None, help="only the first N subjects")
    p.add_argument("--out", required=True, help="folder for gate.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT/gate.json")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.generalist.mr_gate import gate_by_lesion_kind
    from bundle.io import ensure_writable_dir
    from bundle.tables import refuse_existing_report, write_table_report

    out = ensure_writable_dir(args.out, "setting out")
    refuse_existing_report(out, "gate.json", args.overwrite)
    start = time.perf_counter()
    rows = gate_by_lesion_kind(args.run, args.datalist, args.drf, args.subjects)
    lines = ["| DRF | region | MR channel | n | mean gate | min | max |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        values = f"{r['mean']:.3f} | {r['min']:.3f} | {r['max']:.3f}"
        lines.append(f"| {r['drf']:g} | {r['region']} | {r['channel']} | {r['n']} | {values} |")
    command = "python scripts/mr_gate_reading.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    record = {"run": args.run, "datalist": args.datalist, "rows": rows}
    title = f"The MR gate of {args.run} on {args.datalist}"
    minutes = (time.perf_counter() - start) / 60
    write_table_report(out, "gate.json", record, title, "\n".join(lines), command, minutes, args.overwrite)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
