#!/usr/bin/env python
"""Score saved predictions against full-dose references with the bundle's metric code, e.g. the outputs of another
method or tool: NRMSE, PSNR and SSIM inside the brain mask (and in the paper's convention), regional metrics, and with a
lesion label map the bias of every lesion's SUVmean, SUVmax and SUVpeak and its contrast recovery.

    python scripts/evaluate_predictions.py --pred P --ref R --mask M [--lesion-mask L] [--truth T] [--tissue S] [--json]

Bias is 100 x (value in P / value in R - 1), so it does not depend on the images' units (Bq/mL or SUV alike).
With --json, stdout holds exactly one JSON object: the metrics of the prediction (of each, keyed by its path, when
several are given).
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
    p.add_argument(
        "--lesion-mask", nargs="*", default=None, help="lesion label map(s): 0 background, one integer per lesion"
    )
    p.add_argument("--truth", nargs="*", default=None, help="phantom(s): lesion bias against the true activity too")
    p.add_argument(
        "--tissue", nargs="*", default=None, help="tissue map(s) (1 grey, 2 white matter) for regional metrics"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object with every metric instead of a table")
    p.add_argument("--out", default=None, help="CSV file to write (refused if it exists unless --overwrite)")
    p.add_argument("--overwrite", action="store_true")
    return p


def _per_prediction(args, option: str) -> list:
    """The files given for `option`, one per prediction (or none)."""
    files = getattr(args, option.replace("-", "_")) or []
    if files and len(files) != len(args.pred):
        from bundle.errors import InputDataError

        raise InputDataError(f"setting --{option}: give one file per prediction ({len(args.pred)}), got {len(files)}")
    return files


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import json

    from monai.transforms import Compose, EnsureChannelFirstd, Orientationd

    from bundle.errors import InputDataError, OutputExistsError
    from bundle.evaluation import check_prediction_geometry
    from bundle.metrics import check_mask, estimate_support_mask, evaluate_volume
    from bundle.metrics.lesion import check_lesion_map
    from bundle.tables import format_table, write_csv
    from bundle.transforms import CheckPETVolumesd, LoadPETd

    if len(args.ref) != len(args.pred):
        raise InputDataError("settings --pred/--ref: give one reference per prediction")
    extra = {
        key: _per_prediction(args, option)
        for key, option in (("mask", "mask"), ("lesion", "lesion-mask"), ("truth", "truth"), ("tissue", "tissue"))
    }
    if args.out and Path(args.out).exists() and not args.overwrite:
        raise OutputExistsError(f"{args.out}: already exists; pass --overwrite to replace it")
    results, rows = {}, []
    for i, (pred, ref) in enumerate(zip(args.pred, args.ref)):
        item = {"pred": pred, "label": ref, **{k: files[i] for k, files in extra.items() if files}}
        keys = list(item)
        data = Compose([LoadPETd(keys, image_only=True), EnsureChannelFirstd(keys)])(item)
        check_prediction_geometry(data["pred"], data["label"], f"prediction {pred}")
        CheckPETVolumesd(keys, reference_key="label", activity_keys=("label",), min_slices=1)(data)
        data = Orientationd(keys, axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S")))(data)
        volume = {k: data[k][0].numpy() for k in keys}
        mask = (
            check_mask(volume["mask"] > 0.5, f"mask {item['mask']}")
            if "mask" in item
            else estimate_support_mask(volume["label"])
        )
        lesion = (
            check_lesion_map(volume["lesion"], volume["label"].shape, f"lesion map {item['lesion']}")
            if "lesion" in item
            else None
        )
        voxel = tuple(float(v) for v in data["label"].pixdim[:3])
        result = evaluate_volume(
            volume["pred"], volume["label"], mask, voxel, lesion, volume.get("truth"), volume.get("tissue")
        )
        results[pred] = result
        rows.append(
            {
                "prediction": pred,
                **{k: result[k] for k in ("nrmse", "psnr", "ssim")},
                **{f"{r}_psnr": v["psnr"] for r, v in result["regions"].items()},
            }
        )
    if args.json:
        print(json.dumps(results[args.pred[0]] if len(args.pred) == 1 else results, indent=1, allow_nan=True))
    else:
        print(format_table(rows, list(rows[0])))
        for pred, result in results.items():
            for label, values in result["lesions"].items():
                print(
                    f"{pred} lesion {label}: SUVmean {values['suv_mean_bias_pct']:+.1f} %, SUVmax "
                    f"{values['suv_max_bias_pct']:+.1f} %, SUVpeak {values['suv_peak_bias_pct']:+.1f} %, "
                    f"contrast recovery {values['contrast_recovery']:.3f}"
                )
    if args.out:
        write_csv(rows, args.out, overwrite=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
