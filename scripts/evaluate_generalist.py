#!/usr/bin/env python
"""Evaluate trained generalist runs at every dose level of the test sets (the paper's 9 subjects and the new-anatomy
cohort) against the input and a Gaussian tuned per DRF on the training cohort; writes OUT/README.md (targets, per-DRF,
lesion and paired tables) and OUT/results.json (every record).

    python scripts/evaluate_generalist.py --run conditioned=runs/generalist/conditioned-l1/checkpoints --out docs/generalist
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import ConfigValueError, cli_errors
from bundle.simulation.presets import DOSE_CHAIN


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="evaluate_generalist.py", description=__doc__.splitlines()[0])
    p.add_argument("--run", nargs="+", required=True, help="NAME=CHECKPOINTS_DIR of each trained run (first: proposed)")
    p.add_argument("--paper-datalist", default="data/simulated_quick/datalist.json")
    p.add_argument("--new-anatomy-datalist", default="data/cohorts/new_anatomy/datalist.json")
    p.add_argument("--tuning-datalist", default="data/cohorts/generalist_train/datalist.json")
    p.add_argument("--tuning-subjects", default="12", help="training-cohort subjects the Gaussian is tuned on")
    p.add_argument("--drf", nargs="+", default=[f"{d:g}" for d in DOSE_CHAIN], help="dose levels (default 2-200)")
    p.add_argument(
        "--estimated-drf",
        action="store_true",
        help="also run each dose-conditioned network on the DRF estimated from the image (fitted on the tuning "
        "subjects) instead of the true one",
    )
    p.add_argument("--out", default="docs/generalist", help="report folder (README.md and results.json rewritten)")
    p.add_argument(
        "--from-results",
        action="store_true",
        help="rebuild OUT/README.md from OUT/results.json without evaluating again (e.g. to add --reference-records)",
    )
    p.add_argument(
        "--reference-records",
        default=None,
        help="a paper report's results.json (docs/results/results.json): its leave-one-out-tuned Gaussian on the paper "
        "subjects is added as a stricter reference where it was scored on the same data",
    )
    p.add_argument("--command", default=None, help="the command line to print in the report (default: this one)")
    p.add_argument("--no-progress", action="store_true")
    return p


def _runs(specs: Sequence[str]) -> dict[str, str]:
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigValueError(f"setting run: expected NAME=CHECKPOINTS_DIR, got {spec!r}")
        out[name] = path
    return out


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.benchmark.measure import machine_description
    from bundle.generalist import TrainedDenoiser, evaluate_test_sets, tuned_gaussians
    from bundle.generalist.report import REFERENCE, report_lines, same_data_reference
    from bundle.generalist.study import GAUSSIAN, INPUT, fit_cohort_drf_estimator
    from bundle.io import ensure_writable_dir, read_json, write_json, write_text
    from bundle.metrics.dose_estimation import estimate_drf

    runs = _runs(args.run)
    drfs = [float(d) for d in args.drf]
    out = ensure_writable_dir(args.out, "setting out")
    if args.from_results:
        results = read_json(out / "results.json", "generalist results")
        records, gaussians, estimator = results["records"], results["gaussian"], results.get("drf_estimator")
        methods, seconds = (
            list(dict.fromkeys(r["method"] for r in records if r["method"] not in (INPUT, GAUSSIAN))),
            results["seconds"],
        )
        settings, runs = results["settings"], results["runs"]
    else:
        start = time.perf_counter()
        denoisers = {name: TrainedDenoiser(path) for name, path in runs.items()}
        tuned = tuned_gaussians(args.tuning_datalist, drfs, int(args.tuning_subjects))
        gaussians = {f"{d:g}": g.params for d, g in tuned.items()}
        calls = dict(denoisers)
        estimator = None
        if args.estimated_drf:
            estimator = fit_cohort_drf_estimator(args.tuning_datalist, drfs, int(args.tuning_subjects))
            for name, denoiser in denoisers.items():
                if denoiser.dose_conditioned:
                    calls[f"{name}, estimated DRF"] = lambda low, drf, d=denoiser: d(low, estimate_drf(low, estimator))
        test_sets = {"paper": args.paper_datalist}
        if args.new_anatomy_datalist and Path(args.new_anatomy_datalist).is_file():
            test_sets["new-anatomy"] = args.new_anatomy_datalist
        records = evaluate_test_sets(test_sets, drfs, calls, tuned, progress=not args.no_progress)
        methods, seconds = list(calls), time.perf_counter() - start
        settings = {n: d.settings for n, d in denoisers.items()}
    shown = list(records)
    if args.reference_records:
        shown += same_data_reference(records, read_json(args.reference_records, "paper results")["records"])
    command = args.command or "python scripts/evaluate_generalist.py " + " ".join(argv or sys.argv[1:])
    names = {INPUT: "input", GAUSSIAN: "Gaussian", **{n: n for n in methods}}
    header = [
        "# The generalist model: every dose level, lesions, new anatomy",
        "",
        f"Generated by `{command}` ({seconds / 60:.1f} min on {machine_description()}). Runs: "
        + ", ".join(f"{n} = `{p}`" for n, p in runs.items())
        + f". Gaussian tuned at each DRF on the first {args.tuning_subjects} subjects of `{args.tuning_datalist}`: "
        + ", ".join(f"DRF {d} {g}" for d, g in gaussians.items())
        + ".",
        "",
    ]
    if estimator is not None:
        header += [
            f"DRF estimator for the '{', estimated DRF'}' rows: {estimator['model']}, floor {estimator['floor']:.3g}, "
            f"slope {estimator['slope']:.3g}, fitted on the tuning subjects (RMS error {estimator['fit_rms_log2_error']:.2f} "
            "in log2 DRF on them).",
            "",
        ]
    if any(r["method"] == REFERENCE for r in shown):
        names[REFERENCE] = "Gaussian (LOO on the paper subjects)"
        header += [
            f"`{REFERENCE}`: the Gaussian tuned leave-one-out on the paper subjects themselves, from "
            f"`{args.reference_records}` (the same data, checked record by record): a stricter reference than the "
            "training cohort's, whose protocols (post-filters, voxel sizes) differ from the paper subjects'.",
            "",
        ]
    lines = report_lines(shown, list(methods), next(iter(runs)), drfs, header, names)
    results = {
        "command": command,
        "runs": runs,
        "settings": settings,
        "gaussian": gaussians,
        "drf_estimator": estimator,
        "cpu": machine_description(),
        "seconds": round(seconds, 1),
        "records": records,
    }
    write_json(results, out / "results.json", overwrite=True)
    write_text("\n".join(lines) + "\n", out / "README.md", overwrite=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
