#!/usr/bin/env python
"""How the noise estimator codes a training cohort's images: per DRF, how many read above the top of the trained
range (where inference, and the image-coded profile, cap the code) and the median code.

    python scripts/training_codes.py --estimator runs/noise_estimator/bands.json --drf 20 50 100 200
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="training_codes.py", description=__doc__.splitlines()[0])
    p.add_argument("--estimator", default="models/noise_estimator.json", help="the estimator's record")
    p.add_argument("--datalist", default="data/cohorts/generalist_train/datalist.json")
    p.add_argument("--drf", nargs="+", type=float, default=[20.0, 50.0, 100.0, 200.0])
    p.add_argument("--top", type=float, default=200.0, help="the top of the trained range (the cap)")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    import numpy as np

    from bundle.data import at_dose, load_datalist
    from bundle.io import load_ras_volume
    from bundle.noise_estimation import NoiseEstimator

    estimator, items = NoiseEstimator.load(args.estimator), load_datalist(args.datalist)
    print(f"| DRF label | images | read above {args.top:g} | median code |\n|---|---|---|---|")
    for drf in args.drf:
        codes = [estimator.code_drf(load_ras_volume(item["image"]))[0] for item in at_dose(items, drf)]
        above = sum(code > args.top for code in codes)
        print(f"| {drf:g} | {len(codes)} | {above} | {float(np.median(codes)):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
