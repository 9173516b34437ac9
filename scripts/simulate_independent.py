#!/usr/bin/env python
"""Simulate a test cohort with the independent simulator (bundle/independent_sim): another projector, PSF,
reconstruction, count scale, grids and lesion recipe than the bundle's own; for testing only.

    python scripts/simulate_independent.py --output-dir data/cohorts/second_simulator --subjects 6
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import ConfigValueError, cli_errors


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="simulate_independent.py", description=__doc__.splitlines()[0])
    p.add_argument("--output-dir", default="data/cohorts/second_simulator")
    p.add_argument("--subjects", default="6")
    p.add_argument("--seed", default="7000")
    p.add_argument("--drf", nargs="+", default=None, help="dose levels (default 2 4 10 20 50 100 200)")
    p.add_argument("--no-progress", action="store_true")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.independent_sim import simulate_independent_cohort
    from bundle.independent_sim.cohort import DRFS

    try:
        subjects, seed = int(args.subjects), int(args.seed)
        drfs = DRFS if args.drf is None else tuple(float(d) for d in args.drf)
    except ValueError as exc:
        raise ConfigValueError(f"setting subjects / seed / drf: {exc}") from None
    if subjects < 1 or seed < 0 or any(d <= 1 for d in drfs):
        raise ConfigValueError("settings: subjects >= 1, seed >= 0 and every DRF > 1 are needed")
    path = simulate_independent_cohort(args.output_dir, subjects, seed, drfs, progress=not args.no_progress)
    print(f"datalist {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
