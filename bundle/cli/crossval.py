"""`scripts/crossval.py`: leave-one-out cross-validation of the bundle, tracked in MLflow.

Examples:
    python scripts/crossval.py                                  # CPU default profile, all 9 folds
    python scripts/crossval.py --profile paper                  # the paper's 120-epoch profile (GPU)
    python scripts/crossval.py --folds 0 1 --tracking-uri http://127.0.0.1:5000   # some folds, shared server
    python scripts/crossval.py --override base_features=32 --override loss_name='"l2"'
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Sequence

from ..errors import ConfigValueError, cli_errors
from .common import OneLineArgumentParser, setup_logging

PROFILES = {"cpu-default": [], "paper": ["configs/profiles/paper.json"]}


def parse_override(text: str) -> tuple[str, object]:
    """`key=value` with value read as JSON, else as a Python literal, else as a plain string."""
    if "=" not in text:
        raise ConfigValueError(f"setting override: expected key=value, got {text!r}")
    key, raw = text.split("=", 1)
    for parse in (json.loads, ast.literal_eval):
        try:
            return key.strip(), parse(raw)
        except (ValueError, SyntaxError):
            continue
    return key.strip(), raw


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
    p.add_argument("--override", action="append", default=[], help="config override key=value (repeatable)")
    p.add_argument("--progress", action="store_true", help="show per-epoch progress bars")
    p.add_argument("--no-summary", action="store_true", help="do not write the summary (parallel fold jobs)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    from ..crossval import CrossValidation

    overrides = dict(parse_override(o) for o in args.override)
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
    )
    summary = cv.run(args.folds, summary=not args.no_summary)
    if summary is None and not args.no_summary:
        print(f"folds done; the summary is written once every fold in {cv.output_dir} is complete")
    print(f"MLflow UI: mlflow ui --backend-store-uri {cv.tracking_uri}")
    return 0
