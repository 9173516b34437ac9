#!/usr/bin/env python
"""Write a simulated paired low-/full-dose PET dataset to a folder."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors
from bundle.simulation.presets import DOSE_CHAIN, PRESETS, ReconstructionSettings, SimulationConfig


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="simulate.py", description=__doc__)
    p.add_argument("--output-dir", required=True, help="folder to write the dataset to (created if missing)")
    p.add_argument("--subjects", default="9", help="number of subjects (default 9)")
    p.add_argument("--preset", default="quick", help=f"one of {sorted(PRESETS)} (default quick)")
    p.add_argument(
        "--drf",
        nargs="+",
        default=["200"],
        help="dose-reduction factor(s) > 1, nested (each lower dose's events a subset of the higher's), e.g. "
        "--drf 4 20 200; `--drf chain` for 2 4 10 20 50 100 200",
    )
    p.add_argument(
        "--lesions",
        default="gbm",
        choices=["gbm", "mix"],
        help="gbm: one glioblastoma-like lesion (the default dataset's recipe); mix: 1-4 lesions of distinct kinds "
        "(hot nodule, ring-enhancing, PET-only, cold), one label each",
    )
    p.add_argument(
        "--count-sampler",
        default="legacy",
        choices=["legacy", "inverse_cdf"],
        help="legacy: numpy's Poisson sampler (the default dataset's; its noise depends on the CPU kind and thread "
        "count); inverse_cdf: one uniform per bin, the same counts on any CPU and thread count",
    )
    p.add_argument("--seed", default="0", help="random seed (default 0)")
    p.add_argument(
        "--counts", default=None, help="full-dose prompts per subject (default: the preset's calibrated level)"
    )
    p.add_argument("--osem-iterations", default="2")
    p.add_argument("--osem-subsets", default="28")
    p.add_argument("--postfilter-fwhm-mm", default="0", help="Gaussian post-filter FWHM in mm (default 0: none)")
    p.add_argument("--no-psf", action="store_true", help="do not model the resolution inside OSEM (plain OSEM)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--overwrite", action="store_true", help="re-simulate subjects that are already complete")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _number(name: str, text: str, kind: type = float) -> float | int:
    """Parse a number from the command line, naming the setting when it is not one."""
    from bundle.errors import ConfigValueError

    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ConfigValueError(f"setting {name}: expected a number, got {text!r}") from None
    if kind is int:
        if not value.is_integer():
            raise ConfigValueError(f"setting {name}: expected an integer, got {text!r}")
        return int(value)
    return value


def config_from_args(args) -> SimulationConfig:
    recon = ReconstructionSettings(
        iterations=_number("osem_iterations", args.osem_iterations, int),
        subsets=_number("osem_subsets", args.osem_subsets, int),
        model_psf=not args.no_psf,
        postfilter_fwhm_mm=_number("postfilter_fwhm_mm", args.postfilter_fwhm_mm),
    )
    return SimulationConfig(
        preset=args.preset,
        n_subjects=_number("subjects", args.subjects, int),
        drfs=DOSE_CHAIN if args.drf == ["chain"] else tuple(_number("drf", d) for d in args.drf),
        lesions=args.lesions,
        count_sampler=args.count_sampler,
        seed=_number("seed", args.seed, int),
        counts_full_dose=None if args.counts is None else _number("counts", args.counts),
        recon=recon,
        device=args.device,
    )


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    config = config_from_args(args)
    from bundle.simulation.dataset import simulate_dataset

    start = time.perf_counter()
    manifest = simulate_dataset(args.output_dir, config, overwrite=args.overwrite, progress=not args.no_progress)
    done = manifest["seconds_per_subject_this_run"]
    print(
        f"dataset {args.output_dir}: {config.n_subjects} subjects ({len(done)} simulated, "
        f"{config.n_subjects - len(done)} already complete), preset {config.preset}, "
        f"DRF {', '.join(f'{d:g}' for d in config.drfs)}, {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
