#!/usr/bin/env python
"""Ship one fold of a finished cross-validation as the bundle's weights.

    python scripts/release.py --loocv-dir runs/loocv-cpu-default --fold 0 --overwrite && python scripts/export.py --overwrite

Copies the fold's selected checkpoint (best validation PSNR) to models/model.pt, writes its provenance to
models/model_provenance.json and the cross-validation mean and sd into configs/metadata.json (eval_metrics).
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
    p.add_argument("--loocv-dir", required=True, help="a finished cross-validation (scripts/crossval.py --output-dir)")
    p.add_argument("--fold", type=int, default=0, help="the fold whose weights are shipped")
    p.add_argument("--models-dir", default="models")
    p.add_argument("--meta-file", default="configs/metadata.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing models/model.pt")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.release import ship_fold_checkpoint

    argv_text = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    record = ship_fold_checkpoint(
        args.loocv_dir,
        args.fold,
        args.models_dir,
        args.meta_file,
        command=f"python scripts/release.py {argv_text}",
        overwrite=args.overwrite,
    )
    print(json.dumps(record["cross_validation"], indent=1))
    print(f"shipped {record['source']} -> {record['weights']} (sha256 {record['sha256'][:12]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
