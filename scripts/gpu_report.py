#!/usr/bin/env python
"""Turn a GPU run's output folder (scripts/gpu_run.py OUT) into the docs/ updates: the GPU table of
docs/performance.md, the model card's rows and the results rows, each naming the GPU and the command.

Example:
    python scripts/gpu_report.py /path/to/OUT          # then review and commit docs/
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors
from bundle.gpu_run.docs_update import update_docs


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="the GPU run's output folder")
    p.add_argument("--docs-dir", default=str(Path(__file__).resolve().parents[1] / "docs"))
    p.add_argument("--allow-dry-run", action="store_true", help="accept a dry run's folder (tests; not a measurement)")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    for path in update_docs(args.out, args.docs_dir, allow_dry_run=args.allow_dry_run):
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
