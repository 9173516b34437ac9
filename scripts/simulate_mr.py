#!/usr/bin/env python
"""Give a simulated cohort an MR as a scanner would acquire it (T1 and FLAIR with Rician noise, bias field, contrast,
resolution, PET-MR misregistration and MR-only lesions), leaving its PET untouched; writes OUT/datalist.json.

    python scripts/simulate_mr.py --datalist data/simulated_quick/datalist.json --out data/cohorts/paper_mr
    python scripts/simulate_mr.py --datalist data/simulated_quick/datalist.json --out data/cohorts/paper_mr_moved \
        --shift-mm 2 2 --rotation-deg 2 2    # every MR 2 mm and 2 degrees off its PET
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors

RANGE_SETTINGS = ("shift_mm", "rotation_deg", "t1_snr", "flair_snr", "bias_field_sd", "mr_only_lesions")


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="simulate_mr.py", description=__doc__.splitlines()[0])
    p.add_argument("--datalist", required=True, help="a simulated cohort's datalist (with t1, tissue, mask, lesion)")
    p.add_argument("--out", required=True, help="the MR cohort's folder")
    p.add_argument("--seed", type=int, default=0)
    for name in RANGE_SETTINGS:
        flag = "--" + name.replace("_", "-")
        p.add_argument(flag, nargs=2, type=float, metavar=("LOW", "HIGH"), help=f"range of {name} (default: MR_RANGES)")
    p.add_argument("--overwrite", action="store_true", help="replace an MR cohort already in --out")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.simulation.mr_cohort import simulate_mr_cohort, validated_ranges

    overrides = {name: getattr(args, name) for name in RANGE_SETTINGS if getattr(args, name) is not None}
    path = simulate_mr_cohort(args.datalist, args.out, args.seed, validated_ranges(overrides), args.overwrite)
    print(f"datalist {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
