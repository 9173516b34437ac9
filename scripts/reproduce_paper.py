#!/usr/bin/env python
"""Regenerate docs/results/ (every table and figure of the paper's analysis).

python scripts/reproduce_paper.py                       # CPU: default profile, reduced ablation protocol
python scripts/reproduce_paper.py --profile paper       # GPU: paper profile, full protocol
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import PROFILES, OneLineArgumentParser, parse_override
from bundle.errors import cli_errors

# AC-Net costs ~7x more per 128 x 128 slice than the proposed network (0.53 s vs 0.08 s for 16 slices, bf16, 2 cores).
# On CPU it gets about the proposed network's wall-clock budget per fold (~4 min) by training on 64 x 64 patches
# (the original is patch-based) for 10 epochs (~22 s per epoch with validation, measured).
ACNET_CPU = {"patch_size": [64, 64], "num_epochs": 10, "slices_per_volume": 64}


def parse_baseline_dose_levels(text: str) -> tuple[str, list[float]]:
    """`bm3d=200,20,4` -> ('bm3d', [200.0, 20.0, 4.0]); argparse turns a bad value into a one-line error."""
    method, _, levels = text.partition("=")
    try:
        drfs = [float(d) for d in levels.split(",") if d.strip()]
    except ValueError:
        drfs = []
    if not method.strip() or not drfs or any(not d >= 1 for d in drfs):
        raise argparse.ArgumentTypeError(f"expected METHOD=DRF[,DRF...] with DRFs >= 1, got {text!r}")
    return method.strip(), drfs


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="reproduce_paper.py", description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="cpu-default", choices=sorted(PROFILES))
    p.add_argument("--runs-dir", default=None, help="default runs/paper-<profile>")
    p.add_argument("--loocv-dir", default=None, help="reuse this finished cross-validation of the proposed network")
    p.add_argument("--out", default="docs/results")
    p.add_argument(
        "--protocol", default=None, choices=["cpu-reduced", "full"], help="ablation protocol (default by profile)"
    )
    p.add_argument("--studies", nargs="*", default=None, help="ablation studies to run (default all)")
    p.add_argument("--baselines", nargs="*", default=None, help="default gaussian nlm bm3d (bm3d only if installed)")
    p.add_argument(
        "--baseline-dose-levels",
        action="append",
        default=[],
        metavar="METHOD=DRF,DRF",
        type=parse_baseline_dose_levels,
        help="run a slow baseline only at these dose levels, e.g. bm3d=200,20,4 (default: every level)",
    )
    p.add_argument(
        "--reuse-records",
        default=None,
        metavar="RESULTS_JSON",
        help="an earlier report's results.json whose records stand in for --reuse-methods",
    )
    p.add_argument(
        "--reuse-methods",
        nargs="+",
        default=[],
        help="methods (proposed, AC-Net, Gaussian, NLM, BM3D) taken from --reuse-records at every dose level it holds "
        "for them; a reused baseline still runs at the other levels",
    )
    p.add_argument("--no-acnet", action="store_true")
    p.add_argument("--no-timing", action="store_true")
    p.add_argument("--override", action="append", default=[], help="config override key=value for every run")
    p.add_argument("--acnet-override", action="append", default=[], help="extra override for AC-Net runs")
    p.add_argument(
        "--folds",
        nargs="*",
        type=int,
        default=None,
        help="leave-one-out folds of the comparison (default all 9; fewer is a documented reduced run)",
    )
    p.add_argument("--ablation-folds", nargs="*", type=int, default=None)
    p.add_argument("--ablation-epochs", type=int, default=None)
    p.add_argument(
        "--rewrite-claims",
        action="store_true",
        help="only judge the claims again from <out>/results.json and rewrite that section (nothing runs)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    if args.rewrite_claims:
        from bundle.paper.claims_report import rewrite_claims

        print(f"rewrote the claims of {rewrite_claims(args.out)}")
        return 0
    from dataclasses import replace
    from pathlib import Path

    from bundle.baselines import available_baselines
    from bundle.paper.ablations import ABLATIONS, PROTOCOLS
    from bundle.paper.reproduce import PaperReproduction

    protocol = PROTOCOLS[args.protocol or ("full" if args.profile == "paper" else "cpu-reduced")]
    if args.ablation_folds is not None:
        protocol = replace(protocol, folds=tuple(args.ablation_folds))
    if args.ablation_epochs is not None:
        protocol = replace(protocol, num_epochs=args.ablation_epochs)
    baselines = (
        args.baselines
        if args.baselines is not None
        else [m for m in ("gaussian", "nlm", "bm3d") if m in available_baselines()]
    )
    overrides = dict(parse_override(o) for o in args.override)
    overrides.setdefault("profile", args.profile)
    acnet = dict(ACNET_CPU if args.profile == "cpu-default" else {})
    acnet.update(dict(parse_override(o) for o in args.acnet_override))
    argv_text = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    study = PaperReproduction(
        runs_dir=Path(args.runs_dir or f"runs/paper-{args.profile}"),
        out_dir=Path(args.out),
        config_files=["configs/train.json", *PROFILES[args.profile]],
        overrides=overrides,
        baselines=baselines,
        acnet_files=() if args.no_acnet else ("configs/variants/acnet.json",),
        acnet_overrides=acnet,
        protocol=protocol,
        studies=args.studies if args.studies is not None else list(ABLATIONS),
        loocv_dir=Path(args.loocv_dir) if args.loocv_dir else None,
        timing=not args.no_timing,
        command=f"python scripts/reproduce_paper.py {argv_text}".strip(),
        folds=args.folds,
        baseline_dose_levels=dict(args.baseline_dose_levels),
        reuse_records=Path(args.reuse_records) if args.reuse_records else None,
        reuse_methods=list(args.reuse_methods),
    )
    print(f"report written: {study.run()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
