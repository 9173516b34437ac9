#!/usr/bin/env python
"""Score saved predictions against full-dose references with the bundle's
metric code (NRMSE, PSNR, SSIM inside the mask), e.g. the outputs of another method or tool.

    python scripts/evaluate_predictions.py --pred pred.nii.gz --ref full.nii.gz [--mask brain.nii.gz] [--out metrics.csv]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="evaluate_predictions.py", description=__doc__.splitlines()[0])
    p.add_argument("--pred", nargs="+", required=True, help="prediction NIfTI file(s)")
    p.add_argument("--ref", nargs="+", required=True, help="full-dose reference(s), one per prediction")
    p.add_argument("--mask", nargs="*", default=None, help="brain mask(s); estimated from the reference when absent")
    p.add_argument("--out", default=None, help="CSV file to write (refused if it exists unless --overwrite)")
    p.add_argument("--overwrite", action="store_true")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from monai.transforms import Compose, EnsureChannelFirstd, Orientationd

    from bundle.errors import InputDataError, OutputExistsError
    from bundle.evaluation import check_prediction_geometry
    from bundle.metrics import check_mask, estimate_support_mask, image_metrics
    from bundle.tables import format_table, write_csv
    from bundle.transforms import CheckPETVolumesd, LoadPETd

    masks = args.mask or []
    if len(args.ref) != len(args.pred) or (masks and len(masks) != len(args.pred)):
        raise InputDataError("settings --pred/--ref/--mask: give one reference (and mask) per prediction")
    if args.out and Path(args.out).exists() and not args.overwrite:
        raise OutputExistsError(f"{args.out}: already exists; pass --overwrite to replace it")
    rows = []
    for i, (pred, ref) in enumerate(zip(args.pred, args.ref)):
        keys = ["pred", "label"] + (["mask"] if masks else [])
        item = {"pred": pred, "label": ref, **({"mask": masks[i]} if masks else {})}
        data = Compose([LoadPETd(keys, image_only=True), EnsureChannelFirstd(keys)])(item)
        check_prediction_geometry(data["pred"], data["label"], f"prediction {pred}")
        CheckPETVolumesd(keys, reference_key="label", activity_keys=("label",), min_slices=1)(data)
        data = Orientationd(keys, axcodes="RAS")(data)
        mask = (
            check_mask(data["mask"][0] > 0.5, f"mask {masks[i]}") if masks else estimate_support_mask(data["label"][0])
        )
        rows.append({"prediction": pred, **image_metrics(data["pred"][0], data["label"][0], mask)})
    print(format_table(rows, ["prediction", "nrmse", "psnr", "ssim"]))
    if args.out:
        write_csv(rows, args.out, overwrite=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
