#!/usr/bin/env python
"""The MR-guided model against the PET-only one, from an evaluate_generalist report's results.json: per test set and
DRF, mean PSNR (input, LOO Gaussian, PET-only, MR-guided), the paired difference (95 % bootstrap CI) and the subjects
below their input; then each lesion kind's mean SUVmean and SUVmax bias for both models.

    python scripts/mr_guided_table.py docs/generalist/mr_guided/results.json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors

LESION_GROUPS = {  # the issue's lesion classes, by the phantoms' kinds
    "MR-visible hot (rims, ring lesions, nodules)": ("enhancing_rim", "ring_enhancing", "hot_nodule"),
    "PET-only foci": ("pet_only",),
    "MR-only (normal PET)": ("mr_only",),
    "cold (cores, hypometabolic)": ("necrotic_core", "cold"),
}


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="mr_guided_table.py", description=__doc__.splitlines()[0])
    p.add_argument("results", help="OUT/results.json of scripts/evaluate_generalist.py")
    p.add_argument("--mr", default="mr-guided", help="the MR-guided run's name")
    p.add_argument("--pet", default="shipped", help="the PET-only run's name")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    import numpy as np

    from bundle.generalist.report import records_by_cell
    from bundle.metrics.statistics import paired_comparison

    records, by = records_by_cell(args.results)
    sets = list(dict.fromkeys(r["test_set"] for r in records))
    mr, pet = args.mr, args.pet
    guided = "guided-t1" if any(r["method"] == "guided-t1" for r in records) else None  # the T1-guided filter
    print(
        f"| test set | DRF | input | Gaussian (LOO) | {guided or 'T1-guided filter'} | {pet} | {mr} | {mr} - {pet} (95 % "
        "CI) | worse than input |"
    )
    print("|" + "---|" * 9)
    for test_set in sets:
        for drf in sorted({r["drf"] for r in records if r["test_set"] == test_set}):
            subjects = sorted(by[(test_set, drf, mr)])
            psnr = {m: [by[(test_set, drf, m)][s]["psnr"] for s in subjects] for m in ("low dose", pet, mr)}
            loo = [by[(test_set, drf, "gaussian-loo")].get(s, {}).get("psnr") for s in subjects]
            loo_text = f"{np.mean(loo):.2f}" if None not in loo else "n/a"  # LOO needs two subjects in the set
            filtered = [by[(test_set, drf, guided)].get(s, {}).get("psnr") for s in subjects] if guided else [None]
            guided_text = f"{np.mean(filtered):.2f}" if None not in filtered else "n/a"
            gain = paired_comparison(psnr[mr], psnr[pet])
            worse = sum(a < b for a, b in zip(psnr[mr], psnr["low dose"]))
            print(
                f"| {test_set} | {drf:g} | {np.mean(psnr['low dose']):.2f} | {loo_text} | {guided_text} | "
                f"{np.mean(psnr[pet]):.2f} | {np.mean(psnr[mr]):.2f} | {gain.mean_difference:+.2f} "
                f"({gain.ci_low:+.2f} to {gain.ci_high:+.2f}) | {worse}/{len(subjects)} |"
            )
    print()
    print(
        f"| test set | DRF | lesions | n | |SUVmean bias| {pet} / {mr} | SUVmean bias {pet} / {mr} | "
        f"SUVmax bias {pet} / {mr} |"
    )
    print("|" + "---|" * 7)
    for test_set in sets:
        for drf in sorted({r["drf"] for r in records if r["test_set"] == test_set}):
            for group, kinds in LESION_GROUPS.items():
                values = {
                    m: [
                        lesion
                        for record in by[(test_set, drf, m)].values()
                        for lesion in record["lesions"].values()
                        if lesion.get("kind") in kinds
                    ]
                    for m in (pet, mr)
                }
                if not values[mr]:
                    continue

                def mean(m: str, key: str, absolute: bool = False) -> float:
                    found = [les[key] for les in values[m] if les.get(key) is not None]
                    return float(np.mean(np.abs(found) if absolute else found))

                print(
                    f"| {test_set} | {drf:g} | {group} | {len(values[mr])} | "
                    f"{mean(pet, 'suv_mean_bias_pct', True):.1f} / {mean(mr, 'suv_mean_bias_pct', True):.1f} % | "
                    f"{mean(pet, 'suv_mean_bias_pct'):+.1f} / {mean(mr, 'suv_mean_bias_pct'):+.1f} % | "
                    f"{mean(pet, 'suv_max_bias_pct'):+.1f} / {mean(mr, 'suv_max_bias_pct'):+.1f} % |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
