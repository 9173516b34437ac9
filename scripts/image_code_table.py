#!/usr/bin/env python
"""The model card's table of the image-coded comparison, from an evaluate_generalist report's results.json: per test
set and DRF, mean PSNR of the input, the LOO Gaussian and three runs, the paired differences (95 % bootstrap CI),
the subjects below their input and the hot lesions' mean SUVmean bias.

    python scripts/image_code_table.py docs/generalist/image_coded/results.json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="image_code_table.py", description=__doc__.splitlines()[0])
    p.add_argument("results", help="OUT/results.json of scripts/evaluate_generalist.py")
    p.add_argument("--coded", default="image-coded", help="the image-coded run's name")
    p.add_argument("--shipped", default="shipped", help="the label-coded run's name (given the true DRF)")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    import numpy as np

    from bundle.generalist.paired_runs import hot_suv_mean_bias
    from bundle.generalist.report import records_by_cell
    from bundle.metrics.statistics import paired_comparison

    records, by = records_by_cell(args.results)
    coded, true, read = args.coded, args.shipped, f"{args.shipped}, image code"

    print(
        f"| test set | DRF | input | Gaussian (LOO) | {true}, true DRF | {read} | {coded} | {coded} - {true} true | "
        f"{coded} - {read} | worse: {read} / {coded} | hot SUVmean bias: {true} true / {coded} |"
    )
    print("|" + "---|" * 11)
    for test_set in dict.fromkeys(r["test_set"] for r in records):
        for drf in sorted({r["drf"] for r in records if r["test_set"] == test_set}):
            subjects = sorted(by[(test_set, drf, coded)])
            psnr = {
                m: [by[(test_set, drf, m)][s]["psnr"] for s in subjects]
                for m in ("low dose", "gaussian-loo", true, read, coded)
            }
            vs_true, vs_read = (paired_comparison(psnr[coded], psnr[m]) for m in (true, read))
            worse = {m: sum(a < b for a, b in zip(psnr[m], psnr["low dose"])) for m in (read, coded)}
            n = len(subjects)
            print(
                f"| {test_set} | {drf:g} | {np.mean(psnr['low dose']):.2f} | {np.mean(psnr['gaussian-loo']):.2f} | "
                f"{np.mean(psnr[true]):.2f} | {np.mean(psnr[read]):.2f} | {np.mean(psnr[coded]):.2f} | "
                f"{vs_true.mean_difference:+.2f} ({vs_true.ci_low:+.2f} to {vs_true.ci_high:+.2f}) | "
                f"{vs_read.mean_difference:+.2f} ({vs_read.ci_low:+.2f} to {vs_read.ci_high:+.2f}) | "
                f"{worse[read]}/{n} / {worse[coded]}/{n} | "
                f"{hot_suv_mean_bias(by[(test_set, drf, true)].values()):+.1f} / {hot_suv_mean_bias(by[(test_set, drf, coded)].values()):+.1f} % |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
