#!/usr/bin/env python
"""What a wrong dose code costs the shipped (dose-conditioned) model, and what the code inference reads from the image
gets: every test study denoised with its true DRF, with the DRF scaled by 2^e (log2 errors e) and, at
`--estimated-drf`, with no DRF given, through the shipped inference path; writes OUT/README.md (per DRF and error,
the PSNR change paired over studies with 95 % intervals; the estimated code against the true and the best code in
hindsight), OUT/code_error.png and OUT/results.json.

    python scripts/dose_code_sensitivity.py --out docs/generalist/code_error

Several networks side by side (the first is the reference of the paired tables), e.g. the shipped weights and a run
trained with its code spread:

    python scripts/dose_code_sensitivity.py --weights shipped=models/model.pt \
        code-spread=runs/generalist/lesion-rich-uptake-l1-code-spread2/checkpoints --out docs/generalist/code_spread
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


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="dose_code_sensitivity.py", description=__doc__.splitlines()[0])
    p.add_argument(
        "--weights",
        nargs="+",
        default=["models/model.pt"],
        help="released weights (provenance beside) or a run's checkpoints; several as NAME=SOURCE, compared side by "
        "side against the first",
    )
    p.add_argument(
        "--test-set",
        nargs="+",
        default=[
            "paper=data/simulated_quick/datalist.json",
            "second-simulator=data/cohorts/second_simulator/datalist.json",
        ],
        help="NAME=DATALIST of each test set (one missing on disk is skipped)",
    )
    p.add_argument("--drf", nargs="+", type=float, default=[10.0, 50.0, 200.0], help="true dose levels")
    p.add_argument(
        "--log2-errors",
        nargs="+",
        type=float,
        default=[-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0],
        help="log2(DRF given / true DRF); 0 (the true code) is always added",
    )
    p.add_argument(
        "--estimated-drf",
        nargs="*",
        type=float,
        default=[],
        help="true dose levels at which each study is also denoised with no DRF given (the code read from the image)",
    )
    p.add_argument(
        "--noise-estimator",
        default="models/noise_estimator.json",
        help="the noise estimator's record (estimated codes)",
    )
    p.add_argument("--out", default="docs/generalist/code_error")
    p.add_argument("--command", default=None, help="the command line to print in the report (default: this one)")
    return p


def _named_weights(specs: Sequence[str]) -> dict[str, str]:
    """{NAME: SOURCE}: one bare SOURCE is named by its path; several must each be NAME=SOURCE."""
    if len(specs) == 1 and "=" not in specs[0]:
        return {specs[0]: specs[0]}
    named = named_paths(specs, "weights", "SOURCE", skip_missing=False)
    if len(named) != len(specs):
        raise ConfigValueError(f"setting weights: each name once, got {list(specs)}")
    return named


def _estimator_for(source: str, record: str):
    """The noise estimator at `record`, when its dose calibration was fitted on the training cohort of the network
    at `source` (its equivalent DRF is then the code that network learnt); else a one-line error."""
    from bundle.deploy.dose_input import matching_noise_estimator
    from bundle.deploy.trained_denoiser import run_settings
    from bundle.provenance import recorded_setting

    if not Path(record).is_file():
        raise ConfigValueError(f"setting noise-estimator: {record} does not exist; the estimated code needs one")
    trained_on = recorded_setting(run_settings(source)[0], "datalist_file", None)
    estimator = matching_noise_estimator(record, trained_on)
    if estimator is None:
        raise ConfigValueError(
            f"setting noise-estimator: {record} is not calibrated on {source}'s training cohort {trained_on}"
        )
    return estimator


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.benchmark.measure import machine_description
    from bundle.deploy.trained_denoiser import TrainedDenoiser
    from bundle.generalist.code_sensitivity import code_error_markdown, code_error_records, plot_code_error
    from bundle.io import ensure_writable_dir, file_sha256, write_json, write_text

    test_sets = named_paths(args.test_set, "test-set", "DATALIST")
    weights = _named_weights(args.weights)
    out = ensure_writable_dir(args.out, "setting out")
    denoisers = {}
    for name, source in weights.items():
        overrides = {"noise_estimator_record": args.noise_estimator}
        if args.estimated_drf:  # a run's checkpoints have no provenance to find it by: given, once checked
            overrides["noise_estimator"] = _estimator_for(source, args.noise_estimator)
        denoiser = TrainedDenoiser(source, overrides=overrides)
        if not denoiser.dose_conditioned:
            raise ConfigValueError(f"setting weights: {source} is not dose-conditioned; it takes no dose code")
        if args.estimated_drf and not denoiser.denoiser.dose_input.calibrated:
            raise ConfigValueError(
                f"setting noise-estimator: {args.noise_estimator} is missing or not calibrated for {source}; the "
                "estimated code needs one"
            )
        denoisers[name] = denoiser
    errors = sorted(set(args.log2_errors) | {0.0})
    start = time.perf_counter()
    records = []
    for name, denoiser in denoisers.items():
        dose_input = denoiser.denoiser.dose_input
        found = code_error_records(
            test_sets,
            args.drf,
            errors,
            denoiser,
            dose_input.trained_range,
            estimated_drfs=args.estimated_drf,
            used_drf=lambda path, used=dose_input.used: float(used[Path(path).name]["drf"]),
        )
        records += [{**r, "weights": name} for r in found] if len(weights) > 1 else found
    minutes = (time.perf_counter() - start) / 60
    command = args.command or "python scripts/dose_code_sensitivity.py " + shlex.join(argv or sys.argv[1:])
    header = [
        "# What a wrong dose code costs",
        "",
        f"Generated by `{command}` ({minutes:.1f} min on {machine_description()}). Weights: "
        + "; ".join(
            f"{'' if len(weights) == 1 else name + ' '}`{source}` (sha256 `{file_sha256(denoisers[name].weights_file)}`,"
            f" trained DRFs {denoisers[name].denoiser.dose_input.trained_range[0]:g}-"
            f"{denoisers[name].denoiser.dose_input.trained_range[1]:g})"
            for name, source in weights.items()
        )
        + ", through the shipped inference path. Each study is denoised with its true DRF and with the DRF scaled by"
        " 2^e; codes outside a network's trained DRFs are not run (inference refuses them). Negative errors state the"
        " dose low (the image is given as less noisy than it is).",
        "",
    ]
    if args.estimated_drf:
        estimator = next(iter(denoisers.values())).denoiser.dose_input.estimator
        header += [
            f"The estimated code is what inference uses when no DRF is given: the noise estimator `{args.noise_estimator}`"
            f" (weights sha256 `{estimator.record['sha256']}`) reads the study's noise level, and its equivalent DRF "
            f"lowered by 2^{estimator.record.get('safety_margin_log2', 0.0):g} is the code. The best code in hindsight "
            "is the best of the grid of fixed errors, chosen per study on its full-dose image.",
            "",
        ]
    plot_code_error(records, str(out / "code_error.png"), command)  # the figure names the command that made it
    write_json({"command": command, "weights": weights, "records": records}, out / "results.json", overwrite=True)
    write_text(code_error_markdown(records, header, "code_error.png"), out / "README.md", overwrite=True)
    print((out / "README.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
