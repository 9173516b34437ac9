#!/usr/bin/env python
"""Build the model-zoo archive, or verify / extract one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="package.py", description=__doc__)
    p.add_argument("--out-dir", default="dist", help="where <name>_v<version>.zip is written")
    p.add_argument("--verify", metavar="ZIP", help="verify an archive's checksums instead of building one")
    p.add_argument("--extract", nargs=2, metavar=("ZIP", "DEST"), help="verify, then extract an archive into DEST")
    p.add_argument("--overwrite", action="store_true")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    from bundle.packaging import build_archive, extract_archive, verify_archive

    args = build_parser().parse_args(argv)
    if args.verify:
        print(f"{args.verify}: checksums verified, bundle {verify_archive(args.verify)}")
    elif args.extract:
        print(f"extracted to {extract_archive(args.extract[0], args.extract[1], overwrite=args.overwrite)}")
    else:
        out = build_archive(".", args.out_dir, overwrite=args.overwrite)
        print(f"wrote {out} and {out}.sha256")
    return 0


if __name__ == "__main__":
    sys.exit(main())
