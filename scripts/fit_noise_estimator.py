#!/usr/bin/env python
"""Train the noise estimator (a small CNN reading a low-dose image's relative noise level) on a training cohort's
low-/full-dose pairs, fit the calibration from noise level to the dose-conditioned model's code on the same pairs,
and write the weights and their record (sha256, settings, calibration, training losses, held-out error).

    python scripts/fit_noise_estimator.py --out models/noise_estimator.pt
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors

TRAIN_DRFS = [2.0, 4.0, 10.0, 20.0, 50.0, 100.0, 200.0]


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="fit_noise_estimator.py", description=__doc__.splitlines()[0])
    p.add_argument("--datalist", default="data/cohorts/generalist_train/datalist.json", help="training cohort")
    p.add_argument("--drf", nargs="+", type=float, default=TRAIN_DRFS, help="dose levels of the cohort to train on")
    p.add_argument("--held-out", type=int, default=4, help="last subjects of the cohort kept out of training")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--samples-per-epoch", type=int, default=2048)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--safety-margin-log2",
        type=float,
        default=0.0,
        help="inference lowers the equivalent DRF by 2^margin (an under-stated dose costs less than an over-stated one)",
    )
    p.add_argument("--out", default="models/noise_estimator.pt", help="weights; the record is <stem>.json beside")
    p.add_argument("--overwrite", action="store_true", help="replace existing weights and record")
    p.add_argument(
        "--calibrate-only",
        action="store_true",
        help="keep the weights at --out and redo the calibrations, the held-out error and the record (--overwrite)",
    )
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    import numpy as np
    import torch

    from bundle.data import load_datalist
    from bundle.errors import ConfigValueError
    from bundle.io import atomic_path, file_sha256, read_json, write_json
    from bundle.metrics.relative_noise import relative_noise_log2
    from bundle.networks.noise_estimator import NoiseLevelNet
    from bundle.noise_estimation import load_noise_pairs
    from bundle.noise_estimation.estimator import equivalent_drf, volume_noise_log2
    from bundle.noise_estimation.training import fit_code_calibration, fit_dose_calibration, train_noise_estimator

    weights, record_file = Path(args.out), Path(args.out).with_suffix(".json")
    for path in (weights, record_file):
        if path.exists() and not args.overwrite:
            raise ConfigValueError(f"setting out: {path} already exists; pass --overwrite to replace it")
    if args.calibrate_only and not weights.is_file():
        raise ConfigValueError(f"setting calibrate-only: {weights} does not exist; train it first")
    items = load_datalist(args.datalist)
    if not 0 <= args.held_out < len(items):
        raise ConfigValueError(f"setting held-out: {args.held_out} leaves no training subject of {len(items)}")
    train_items, held_items = items[: len(items) - args.held_out], items[len(items) - args.held_out :]
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    pairs = load_noise_pairs(train_items, args.drf)
    if args.calibrate_only:
        previous = read_json(record_file, "noise estimator record")
        network = NoiseLevelNet(int(previous["in_slices"]), int(previous["features"]))
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        losses, minutes_trained = previous["training"]["epoch_losses"], previous["training"]["minutes"]
    else:
        network, losses = train_noise_estimator(
            pairs, epochs=args.epochs, samples_per_epoch=args.samples_per_epoch, seed=args.seed
        )
        minutes_trained = round((time.perf_counter() - start) / 60, 2)
    calibration = fit_dose_calibration(pairs)
    code_calibration = fit_code_calibration(network, pairs)
    held_pairs = load_noise_pairs(held_items, args.drf)
    held_levels = [volume_noise_log2(network, p.low) for p in held_pairs]
    held_errors = [v - relative_noise_log2(p.low, p.full, p.mask) for v, p in zip(held_levels, held_pairs)]
    held_code_errors = [np.log2(equivalent_drf(v, code_calibration) / p.drf) for v, p in zip(held_levels, held_pairs)]
    if not args.calibrate_only:
        with atomic_path(weights, overwrite=args.overwrite) as tmp:
            torch.save(network.state_dict(), tmp)
    this_command = "python scripts/fit_noise_estimator.py " + shlex.join(argv or sys.argv[1:])
    record = {
        "weights": weights.name,
        "sha256": file_sha256(weights),
        "network": "bundle.networks.NoiseLevelNet",
        "in_slices": network.in_slices,
        "features": int(network.correction[0].conv.out_channels),
        "target": "log2 RMS of (low - full) over the brain region, each image over its brain mean "
        "(bundle.metrics.relative_noise)",
        "calibration": {**calibration, "cohort": args.datalist, "drfs": args.drf},
        "code_calibration": {**code_calibration, "cohort": args.datalist, "drfs": args.drf},
        "safety_margin_log2": args.safety_margin_log2,
        "training": {
            "datalist": args.datalist,
            "subjects": [i["subject"] for i in train_items],
            "drfs": args.drf,
            "epochs": args.epochs,
            "samples_per_epoch": args.samples_per_epoch,
            "seed": args.seed,
            "epoch_losses": [round(v, 5) for v in losses],
            "minutes": minutes_trained,
        },
        "held_out": {
            "subjects": [i["subject"] for i in held_items],
            "rms_error_log2_noise": float(np.sqrt(np.mean(np.square(held_errors)))) if held_errors else None,
            "mean_error_log2_noise": float(np.mean(held_errors)) if held_errors else None,
            "rms_code_error_log2_drf": float(np.sqrt(np.mean(np.square(held_code_errors)))) if held_errors else None,
        },
        "command": previous["command"] if args.calibrate_only else this_command,
        "calibration_command": this_command,
    }
    write_json(record, record_file, overwrite=args.overwrite)
    print(
        f"noise estimator: {weights} ({record['training']['minutes']} min); held-out RMS error "
        f"{record['held_out']['rms_error_log2_noise']:.3f} log2 noise, code {record['held_out']['rms_code_error_log2_drf']:.3f}"
        f" log2 DRF; calibration slope {calibration['slope']:.3f}, of the estimates {code_calibration['slope']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
