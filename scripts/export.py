#!/usr/bin/env python
"""Write models/model.ts (TorchScript) and models/model.onnx from models/model.pt."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors

TOLERANCE = 1e-5  # max |export - eager| relative to the output's range


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
    from bundle.deploy.export import (
        check_exports,
        export_onnx,
        export_torchscript,
        load_inference_network,
        record_exports,
    )
    from bundle.errors import InputDataError

    net = load_inference_network(args.config_file, args.ckpt)
    in_channels = net.in_channels
    ts = (
        export_torchscript(net, args.torchscript, args.meta_file, args.config_file, args.overwrite)
        if "torchscript" in args.formats
        else None
    )
    onnx = export_onnx(net, args.onnx, in_channels, overwrite=args.overwrite) if "onnx" in args.formats else None
    diffs = check_exports(net, in_channels, ts, onnx)
    for name, value in diffs.items():
        print(f"{name}: max |export - eager| / range = {value:.2e} (tolerance {TOLERANCE:.0e})")
    bad = {k: v for k, v in diffs.items() if v >= TOLERANCE}
    if bad:
        raise InputDataError(f"export: {sorted(bad)} differ from eager PyTorch beyond {TOLERANCE:.0e}")
    recorded = record_exports(args.ckpt, [Path(p) for p in (ts, onnx) if p is not None])
    if recorded is not None:
        print(f"sha256 of the exports recorded in {recorded}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
