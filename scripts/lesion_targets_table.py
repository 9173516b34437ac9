#!/usr/bin/env python
"""Issue 31's lesion-uptake targets for each network of an evaluate_generalist report (results.json): hot lesions'
SUVmean and SUVmax bias per test set, per paper subject against the Gaussian and the bilateral filter, small lesions
against their noise floor (scripts/lesion_noise_floor.py's results.json), and PSNR against the shipped model; then
a summary per test set, DRF and method with paired 95 % bootstrap CIs.

    python scripts/lesion_targets_table.py docs/generalist/lesion_rich/results.json \
        --noise-floor docs/generalist/lesion_noise_floor/results.json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="lesion_targets_table.py", description=__doc__.splitlines()[0])
    p.add_argument("results", help="OUT/results.json of scripts/evaluate_generalist.py")
    p.add_argument(
        "--shipped",
        default="shipped",
        help="the reference: the shipped model's run name in the report, or one of its outputs ('shipped, drf-rule "
        "output')",
    )
    p.add_argument("--runs", nargs="*", default=None, help="the candidate runs (default: every network of the report)")
    p.add_argument("--noise-floor", default=None, help="results.json of scripts/lesion_noise_floor.py ('' for none)")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.errors import ConfigValueError
    from bundle.generalist.lesion_targets import lesion_summary_rows, lesion_target_rows, noise_floor_index
    from bundle.io import read_json
    from bundle.tables import format_table

    report = read_json(args.results, "generalist results")
    records = report["records"]
    trained = list(report.get("runs") or {})
    outputs = [m for m in dict.fromkeys(r["method"] for r in records) if any(m.startswith(f"{n}, ") for n in trained)]
    networks = trained + outputs  # the networks and their other outputs ("shipped, drf-rule output")
    runs = args.runs if args.runs is not None else networks
    for name in [*runs, args.shipped]:
        if name not in networks:
            raise ConfigValueError(f"setting runs: {name!r} is not a network of {args.results} (it has {networks})")
    floors = noise_floor_index(read_json(args.noise_floor, "noise floor")["rows"]) if args.noise_floor else {}
    for name in runs:
        rows = lesion_target_rows(records, name, args.shipped, floors)
        print(f"## Targets: {name}\n")
        print(format_table(rows, ["target", "test set", "DRF", "measured", ""]) + "\n")
    summary = lesion_summary_rows(records, runs, args.shipped)
    print("## Every method\n")
    print(format_table(summary, list(summary[0]) if summary else []))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
