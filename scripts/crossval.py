#!/usr/bin/env python
"""Leave-one-out cross-validation of the bundle, tracked in MLflow.

Examples:
    python scripts/crossval.py                                  # CPU default profile, all 9 folds
    python scripts/crossval.py --profile paper                  # the paper's 120-epoch profile (GPU)
    python scripts/crossval.py --folds 0 1 --tracking-uri http://127.0.0.1:5000   # some folds, shared server
    python scripts/crossval.py --profile paper-gpu --jobs 9     # the 9 folds side by side on one GPU
    python scripts/crossval.py --override base_features=32 --override loss_name='"l2"'
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import PROFILES, OneLineArgumentParser, parse_override
from bundle.errors import cli_errors


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="crossval.py", description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="cpu-default", choices=sorted(PROFILES), help="training profile")
    p.add_argument("--config-file", nargs="+", default=["configs/train.json"], help="training config(s)")
    p.add_argument("--evaluate-file", default="configs/evaluate.json")
    p.add_argument("--output-dir", default=None, help="default runs/loocv-<profile>")
    p.add_argument("--folds", nargs="+", type=int, default=None, help="folds to run (default all)")
    p.add_argument("--tracking-uri", default=None, help="MLflow URI (default sqlite:///<output-dir>/mlruns.db)")
    p.add_argument("--experiment-name", default=None, help="default uldpet-loocv-<profile>")
    p.add_argument("--baselines", nargs="*", default=["gaussian"], help="gaussian, nlm, bm3d")
    p.add_argument(
        "--dose-levels",
        nargs="+",
        default=["all"],
        help="dose levels (DRFs) the test subjects are evaluated at besides `image`: all (default: every image_drf<D> "
        "of the datalist), none, or a list such as 4 20",
    )
    p.add_argument("--override", action="append", default=[], help="config override key=value (repeatable)")
    p.add_argument("--progress", action="store_true", help="show per-epoch progress bars")
    p.add_argument("--no-summary", action="store_true", help="do not write the summary (parallel fold jobs)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="folds run at once, each group in its own process logging to the one MLflow store (a GPU holds 9)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _dose_level(text: str) -> float:
    """A DRF from the command line (>= 1), or a one-line error naming the setting."""
    from bundle.errors import ConfigValueError

    try:
        value = float(text)
    except ValueError:
        raise ConfigValueError(f"setting --dose-levels: expected all, none or numbers, got {text!r}") from None
    if not value >= 1.0:
        raise ConfigValueError(f"setting --dose-levels: a dose-reduction factor must be >= 1, got {text!r}")
    return value


def _worker_args(args, cv) -> list[str]:
    """The command line of one fold process: this one's settings, resolved, without --jobs, --folds, --summary."""
    out = ["--profile", args.profile, "--config-file", *args.config_file, "--evaluate-file", args.evaluate_file]
    out += ["--output-dir", str(cv.output_dir), "--tracking-uri", cv.tracking_uri]
    out += ["--experiment-name", cv.experiment_name, "--baselines", *args.baselines]
    out += ["--dose-levels", *args.dose_levels, "--no-summary"]
    for o in args.override:
        out += ["--override", o]
    return out + (["--progress"] if args.progress else []) + (["-v"] if args.verbose else [])


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.loocv import CrossValidation
    from bundle.parallel_folds import run_fold_processes

    overrides = dict(parse_override(o) for o in args.override)
    levels = args.dose_levels
    if levels == ["all"]:
        dose_levels = "all"
    elif levels == ["none"]:
        dose_levels = []
    else:
        dose_levels = [_dose_level(text) for text in levels]
    overrides.setdefault("profile", args.profile)
    cv = CrossValidation(
        config_files=[*args.config_file, *PROFILES[args.profile]],
        evaluate_file=args.evaluate_file,
        output_dir=args.output_dir or f"runs/loocv-{args.profile}",
        overrides=overrides,
        tracking_uri=args.tracking_uri,
        experiment_name=args.experiment_name or f"uldpet-loocv-{args.profile}",
        baselines=args.baselines,
        progress=args.progress,
        dose_levels=dose_levels,
    )
    if args.jobs > 1:
        folds = cv.check_folds(args.folds)
        cv.store  # noqa: B018 - the MLflow schema and experiment exist before the workers start
        seconds = run_fold_processes(
            Path(__file__), _worker_args(args, cv), folds, args.jobs, Path(cv.output_dir) / "fold_logs"
        )
        print(f"{len(folds)} folds in {seconds:.0f} s with {args.jobs} processes")
        args.folds = []
    summary = cv.run(args.folds, summary=not args.no_summary)
    if summary is None and not args.no_summary:
        print(f"folds done; the summary is written once every fold in {cv.output_dir} is complete")
    print(f"MLflow UI: mlflow ui --backend-store-uri {cv.tracking_uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
