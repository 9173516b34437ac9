#!/usr/bin/env python
"""Ship trained weights as the bundle's model: one fold of a cross-validation, or a generalist run.

    python scripts/release.py --loocv-dir runs/loocv-cpu-default --fold 0 --overwrite
    python scripts/release.py --generalist-run runs/generalist/conditioned-l1 --report docs/generalist/results.json \
        --keep-previous models/variants/paper_loocv --overwrite
    python scripts/release.py --restate --report docs/generalist/results.json

Checks the run, its checkpoint and (for a generalist run) the report, which must name the sha256 of the weights it
measured; then writes the selected checkpoint (best validation PSNR) as models/model.pt, fresh TorchScript and ONNX
exports, the provenance (models/model_provenance.json) and the test results in configs/metadata.json
(eval_metrics), published together: an interrupted release leaves the old model or the new one, never a mix.
`--keep-previous DIR` first copies the release being replaced (weights, exports, provenance) into DIR.
`--restate` keeps the shipped weights and restates their test results from a new report of them (after an inference
default changed), with exports made again for the current metadata; bump the version in configs/metadata.json first.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="release.py", description=__doc__.splitlines()[0])
    p.add_argument("--loocv-dir", default=None, help="a finished cross-validation (scripts/crossval.py --output-dir)")
    p.add_argument("--generalist-run", default=None, help="a finished generalist run (its folder, with checkpoints/)")
    p.add_argument("--report", default="docs/generalist/results.json", help="evaluate_generalist.py's results.json")
    p.add_argument("--keep-previous", default=None, help="copy the weights being replaced into this folder first")
    p.add_argument(
        "--restate",
        action="store_true",
        help="keep the shipped generalist weights; restate their test results from --report (which measured them)",
    )
    p.add_argument("--fold", type=int, default=0, help="the fold whose weights are shipped")
    p.add_argument("--models-dir", default="models")
    p.add_argument("--meta-file", default="configs/metadata.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing models/model.pt")
    p.add_argument(
        "--no-exports",
        action="store_true",
        help="ship without model.ts and model.onnx (those of an earlier release are then refused by every backend)",
    )
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.errors import ConfigValueError
    from bundle.release import restate_generalist, ship_fold_checkpoint, ship_generalist

    argv_text = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    command = f"python scripts/release.py {argv_text}"
    if args.restate:
        if args.loocv_dir or args.generalist_run:
            raise ConfigValueError(
                "setting restate: it keeps the shipped weights; give no --loocv-dir or --generalist-run"
            )
        record = restate_generalist(
            args.report, args.models_dir, args.meta_file, command=command, exports=not args.no_exports
        )
        print(json.dumps(record["test_summary"], indent=1))
        print(f"restated {record['weights']} (sha256 {record['sha256'][:12]}...) from {args.report}")
        return 0
    if (args.loocv_dir is None) == (args.generalist_run is None):
        raise ConfigValueError(
            "setting loocv_dir / generalist_run: give exactly one of --loocv-dir and --generalist-run"
        )
    if args.generalist_run:
        ship, source, summary = ship_generalist, args.generalist_run, "test_summary"
        extra = {"report_file": args.report}
    else:
        ship, source, summary = ship_fold_checkpoint, args.loocv_dir, "cross_validation"
        extra = {"fold": args.fold}
    record = ship(source, **extra, models_dir=args.models_dir, meta_file=args.meta_file, command=command,
                  overwrite=args.overwrite, exports=not args.no_exports,
                  keep_previous=args.keep_previous)  # fmt: skip
    if args.keep_previous:
        print(f"kept the previous release in {args.keep_previous}")
    print(json.dumps(record[summary], indent=1))
    print(f"shipped {record['source']} -> {record['weights']} (sha256 {record['sha256'][:12]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
