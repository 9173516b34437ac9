#!/usr/bin/env python
"""Fit how much of a study's detail finer than the network's 2 mm grid inference keeps (the `detail_drf` of the
Wiener gain in bundle/transforms/native_grid.py) on a native-grid tuning cohort, and record it in the weights'
provenance, where configs/inference.json reads it.

    python scripts/simulate.py --cohort generalist-train-native
    python scripts/fit_detail_gain.py --weights models/model.pt --record
    python scripts/fit_detail_gain.py --weights runs/generalist/lesion-rich-l1/checkpoints --record

A training run's fit goes to `<checkpoints>/best_provenance.json`; inference reads it with
`--ckpt_path <checkpoints>/best.pt --provenance_file <checkpoints>/best_provenance.json`, and evaluate_generalist.py
reads it for the run (and fits it first when it is missing).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors
from bundle.simulation.presets import DOSE_CHAIN


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="fit_detail_gain.py", description=__doc__.splitlines()[0])
    p.add_argument(
        "--weights",
        default="models/model.pt",
        help="released weights with their provenance beside them, or a training run's checkpoints folder (its best.pt)",
    )
    p.add_argument("--datalist", default="data/cohorts/generalist_train_native/datalist.json")
    p.add_argument("--subjects", default=None, help="use the first N subjects of the datalist (default: all)")
    p.add_argument("--drf", nargs="+", default=[f"{d:g}" for d in DOSE_CHAIN])
    p.add_argument(
        "--record",
        action="store_true",
        help="write the fit into the weights' provenance (detail_gain; for a run: <checkpoints>/best_provenance.json)",
    )
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.generalist.detail_gain import fit_detail_drf

    subjects = None if args.subjects is None else int(args.subjects)
    fit = fit_detail_drf(args.weights, args.datalist, [float(d) for d in args.drf], subjects)
    print(json.dumps(fit, indent=1))
    if args.record:
        from bundle.deploy.export import record_provenance_entry, record_run_entry

        if Path(args.weights).is_dir():
            path = record_run_entry(args.weights, "detail_gain", fit)
        else:
            path = record_provenance_entry(args.weights, "detail_gain", fit)
        print(f"recorded detail_drf {fit['detail_drf']:g} in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
