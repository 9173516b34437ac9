#!/usr/bin/env python
"""Write models/model.ts (TorchScript) and models/model.onnx from models/model.pt, checked against eager PyTorch and
recorded (with the sha256 of the weights they came from) in the weights' provenance, published together."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors
from bundle.publish import EXPORT_TOLERANCE as TOLERANCE  # noqa: E402 - max |export - eager| / output range


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="export.py", description=__doc__)
    p.add_argument("--config-file", default="configs/inference.json")
    p.add_argument("--meta-file", default="configs/metadata.json")
    p.add_argument("--ckpt", default="models/model.pt")
    p.add_argument("--torchscript", default="models/model.ts")
    p.add_argument("--onnx", default="models/model.onnx")
    p.add_argument("--formats", nargs="+", default=["torchscript", "onnx"], choices=["torchscript", "onnx"])
    p.add_argument("--overwrite", action="store_true", help="replace existing exported files")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.publish import publish_exports

    targets = {"torchscript": args.torchscript, "onnx": args.onnx}
    targets = {k: v for k, v in targets.items() if k in args.formats}
    entries = publish_exports(args.ckpt, targets, args.config_file, args.meta_file, overwrite=args.overwrite)
    for name, entry in entries.items():
        print(f"{name}: sha256 {entry['sha256'][:12]}..., made from weights {entry['weights_sha256'][:12]}...")
    print(f"checked against eager PyTorch (max |export - eager| / range < {TOLERANCE:.0e}); published together")
    return 0


if __name__ == "__main__":
    sys.exit(main())
