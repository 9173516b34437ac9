#!/usr/bin/env python
"""Measure, per study off the 2 mm grid, the best gain of its sub-2 mm detail against its full-dose image, beside the
shipped weights' DRF rule and a reading from the image alone (OUT/README.md, OUT/results.json).

    python scripts/detail_band_gains.py --out docs/generalist/detail_band
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser, named_paths
from bundle.errors import ConfigValueError, cli_errors

OFF_GRID_SETS = [
    "new-scanners-native=data/cohorts/new_scanners_native/datalist.json",
    "second-simulator=data/cohorts/second_simulator/datalist.json",
    "training-native=data/cohorts/generalist_train_native/datalist.json",
]


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="detail_band_gains.py", description=__doc__.splitlines()[0])
    p.add_argument("--test-set", nargs="+", default=OFF_GRID_SETS, help="NAME=DATALIST (one missing is skipped)")
    p.add_argument("--drf", nargs="+", type=float, default=[2.0, 4.0, 10.0, 20.0, 50.0, 100.0, 200.0])
    p.add_argument("--weights", default="models/model.pt", help="weights whose fitted detail_drf is the DRF rule")
    p.add_argument(
        "--fit-set", default="training-native", help="the test set the image reading's line to w* is fitted on"
    )
    p.add_argument("--out", default="docs/generalist/detail_band")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    import nibabel as nib
    import numpy as np

    from bundle.benchmark.measure import machine_description
    from bundle.data import at_dose, load_datalist
    from bundle.deploy.study_denoiser import recorded_detail_drf
    from bundle.generalist.detail_band import band_gains, fit_reading_line, grid_band
    from bundle.io import ensure_writable_dir, write_json, write_text
    from bundle.tables import format_table
    from bundle.transforms.native_grid import detail_weight, line_gain

    weights = Path(args.weights)
    detail_drf = recorded_detail_drf(weights.with_name(f"{weights.stem}_provenance.json"), weights)
    if detail_drf is None:
        raise ConfigValueError(f"setting weights: {weights} has no fitted detail_drf in its provenance")
    test_sets = named_paths(args.test_set, "test-set", "DATALIST")
    out = ensure_writable_dir(args.out, "setting out")
    start, records = time.perf_counter(), []
    for name, datalist in test_sets.items():
        for item in load_datalist(datalist):
            brain = np.asarray(nib.load(item["mask"]).get_fdata()) > 0.5
            _, band_full = grid_band(item["label"])
            for drf in args.drf:
                low, band_low = grid_band(at_dose([item], drf)[0]["image"])
                gains = band_gains(low, band_low, band_full, brain)
                records.append({"test_set": name, "subject": item["subject"], "drf": drf, **gains})
    minutes = (time.perf_counter() - start) / 60
    if args.fit_set not in test_sets:
        raise ConfigValueError(f"setting fit-set: {args.fit_set!r} is not one of the test sets {list(test_sets)}")
    line = fit_reading_line([r for r in records if r["test_set"] == args.fit_set])
    for r in records:
        r["rule"] = detail_weight(r["drf"], detail_drf)
        r["calibrated"] = line_gain(r["flat"], line)

    def spread(rows: list, key: str) -> str:
        values = [r[key] for r in rows]
        return f"{np.mean(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    def abs_error(rows: list, key: str) -> str:
        errors = [abs(r[key] - r["oracle"]) for r in rows]
        return f"{np.mean(errors):.3f} (max {max(errors):.2f})"

    rows, summary = [], []
    for name in test_sets:
        mine = [r for r in records if r["test_set"] == name]
        label = f"{name} (fitted on)" if name == args.fit_set else name
        summary.append(
            {
                "test set": label,
                "studies": len(mine),
                "DRF rule: mean abs error vs w*": abs_error(mine, "rule"),
                "calibrated reading: mean abs error vs w*": abs_error(mine, "calibrated"),
            }
        )
        for drf in args.drf:
            cell = [r for r in mine if r["drf"] == drf]
            rows.append(
                {
                    "test set": label,
                    "DRF": f"{drf:g}",
                    "studies": len(cell),
                    "best gain w* (min-max)": spread(cell, "oracle"),
                    f"DRF rule (detail_drf {detail_drf:g})": f"{cell[0]['rule']:.2f}",
                    "image reading w_flat (min-max)": spread(cell, "flat"),
                    "calibrated reading (min-max)": spread(cell, "calibrated"),
                }
            )
    command = "python scripts/detail_band_gains.py " + shlex.join(argv or sys.argv[1:])
    text = "\n".join(
        [
            "# How much sub-2 mm detail each study off the training grid is worth keeping",
            "",
            f"Generated by `{command}` ({minutes:.1f} min on {machine_description()}). The band is the study minus its "
            "bilinear round trip through the 2 mm grid; w* fits the full-dose band by the low-dose band inside the "
            "brain (the best gain for that study); the DRF rule is w = 1 / (1 + DRF / detail_drf) of "
            f"`{args.weights}`; w_flat is read from the low-dose image alone "
            f"(`bundle/generalist/detail_band.py`), and calibrated by the line w* = {line['intercept']:.3f} + "
            f"{line['slope']:.3f} x w_flat fitted on `{args.fit_set}` (clipped to 0-1). No network is run: this "
            "measures the gain, not a model.",
            "",
            format_table(summary, list(summary[0])),
            "",
            format_table(rows, list(rows[0])),
            "",
        ]
    )
    write_json(
        {"command": command, "detail_drf": detail_drf, "reading_line": line, "records": records},
        out / "results.json",
        overwrite=True,
    )
    write_text(text, out / "README.md", overwrite=True)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
