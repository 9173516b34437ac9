#!/usr/bin/env python
"""Write a simulated paired low-/full-dose PET dataset to a folder."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import ConfigValueError, cli_errors
from bundle.simulation.cohorts import COHORTS, cohort
from bundle.simulation.presets import (
    ANATOMIES,
    DOSE_CHAIN,
    PHYSICS_SPREADS,
    PRESETS,
    RESOLUTION_SPACES,
    SCANNERS,
    STORAGE_GRIDS,
    ReconstructionSettings,
    SimulationConfig,
)


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="simulate.py", description=__doc__)
    p.add_argument(
        "--cohort",
        default=None,
        help=f"a named cohort ({', '.join(sorted(COHORTS))}): its settings and folder; the options below override them",
    )
    p.add_argument("--output-dir", default=None, help="folder to write the dataset to (created if missing)")
    p.add_argument("--subjects", default=None, help="number of subjects (default 9)")
    p.add_argument("--preset", default=None, help=f"one of {sorted(PRESETS)} (default quick)")
    p.add_argument(
        "--drf",
        nargs="+",
        default=None,
        help="dose-reduction factor(s) > 1, nested (each lower dose's events a subset of the higher's), e.g. "
        "--drf 4 20 200; `--drf chain` for 2 4 10 20 50 100 200",
    )
    p.add_argument(
        "--lesions",
        default=None,
        choices=["gbm", "mix", "rich"],
        help="gbm: one glioblastoma-like lesion (the default dataset's recipe); mix: 1-4 lesions of distinct kinds "
        "(hot nodule, ring-enhancing, PET-only, cold), one label each; rich: the lesion-rich training recipe (4-8 "
        "hot lesions of 5-20 mm at 1.5-4x grey matter, PET-only foci among them, 0-1 cold region)",
    )
    p.add_argument(
        "--count-sampler",
        default=None,
        choices=["legacy", "inverse_cdf"],
        help="legacy: numpy's Poisson sampler (the default dataset's; its noise depends on the CPU kind and thread "
        "count); inverse_cdf: one uniform per bin, the same counts on any CPU and thread count",
    )
    p.add_argument(
        "--anatomy",
        default=None,
        choices=list(ANATOMIES),
        help="mild: the template under small warps (the default dataset's); varied: plus gyral-scale deformation, "
        "head size and shape, and atrophy",
    )
    p.add_argument(
        "--scanner",
        default=None,
        choices=list(SCANNERS),
        help="fixed: one scanner, reconstruction matched to the data model; randomised: voxel size, resolution, "
        "post-filter, PSF and scatter/randoms-estimate errors drawn per subject (see docs/simulation.md)",
    )
    p.add_argument(
        "--resolution-space",
        default=None,
        choices=list(RESOLUTION_SPACES),
        help="image: the detector blur applied to the activity (the default dataset's); sinogram: to the line "
        "integrals, as a detector response is (about twice as fast on fine grids)",
    )
    p.add_argument(
        "--grid",
        default=None,
        choices=list(STORAGE_GRIDS),
        help="preset: a randomised scanner's volumes resampled onto the preset's grid (default); native: kept on each "
        "subject's own drawn grid (a test set off the training grid)",
    )
    p.add_argument(
        "--physics-spread",
        choices=list(PHYSICS_SPREADS),
        default=None,
        help="broad: a randomised scanner's subjects also draw a tailed detector response, OSEM with or without "
        "resolution modelling, its iterations and subsets, and the scatter and randoms fractions (default narrow)",
    )
    p.add_argument(
        "--count-spread", default=None, help="subjects' count levels vary within x(1 -/+ this) (default 0.12)"
    )
    p.add_argument("--seed", default=None, help="random seed (default 0)")
    p.add_argument(
        "--counts", default=None, help="full-dose prompts per subject (default: the preset's calibrated level)"
    )
    p.add_argument("--osem-iterations", default="2")
    p.add_argument("--osem-subsets", default="28")
    p.add_argument("--postfilter-fwhm-mm", default="0", help="Gaussian post-filter FWHM in mm (default 0: none)")
    p.add_argument("--no-psf", action="store_true", help="do not model the resolution inside OSEM (plain OSEM)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument(
        "--workers",
        default=None,
        help="subjects simulated at a time on the CPU, each in its own process (default 1; a cohort's: 2); needs "
        "--count-sampler inverse_cdf",
    )
    p.add_argument("--overwrite", action="store_true", help="re-simulate subjects that are already complete")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _number(name: str, text: str, kind: type = float) -> float | int:
    """Parse a number from the command line, naming the setting when it is not one."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ConfigValueError(f"setting {name}: expected a number, got {text!r}") from None
    if kind is int:
        if not value.is_integer():
            raise ConfigValueError(f"setting {name}: expected an integer, got {text!r}")
        return int(value)
    return value


def _given_settings(args) -> dict:
    """The SimulationConfig settings given on the command line (parsed; the others are left to the cohort)."""
    given: dict = {}
    if args.subjects is not None:
        given["n_subjects"] = _number("subjects", args.subjects, int)
    if args.drf is not None:
        given["drfs"] = DOSE_CHAIN if args.drf == ["chain"] else tuple(_number("drf", d) for d in args.drf)
    if args.seed is not None:
        given["seed"] = _number("seed", args.seed, int)
    if args.count_spread is not None:
        given["count_spread"] = _number("count_spread", args.count_spread)
    if args.counts is not None:
        given["counts_full_dose"] = _number("counts", args.counts)
    for name in (
        "preset",
        "lesions",
        "count_sampler",
        "anatomy",
        "scanner",
        "resolution_space",
        "grid",
        "physics_spread",
    ):
        if getattr(args, name) is not None:
            given[name] = getattr(args, name)
    return given


def config_from_args(args) -> SimulationConfig:
    """The dataset's settings: the command line's where given, else the cohort's, else SimulationConfig's defaults."""
    recon = ReconstructionSettings(
        iterations=_number("osem_iterations", args.osem_iterations, int),
        subsets=_number("osem_subsets", args.osem_subsets, int),
        model_psf=not args.no_psf,
        postfilter_fwhm_mm=_number("postfilter_fwhm_mm", args.postfilter_fwhm_mm),
    )
    settings = dict(cohort(args.cohort).settings) if args.cohort else {}
    settings.update(_given_settings(args))
    return SimulationConfig(**settings, recon=recon, device=args.device)


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    config = config_from_args(args)
    if args.output_dir is None and not args.cohort:
        raise ConfigValueError("setting output_dir: give --output-dir, or --cohort for a named cohort's folder")
    output_dir = args.output_dir or cohort(args.cohort).output_dir
    default_workers = cohort(args.cohort).workers if args.cohort else 1
    workers = _number("workers", args.workers, int) if args.workers is not None else default_workers
    if workers < 1:
        raise ConfigValueError(f"setting workers: expected a positive integer, got {workers}")
    from bundle.simulation.dataset import simulate_dataset

    start = time.perf_counter()
    manifest = simulate_dataset(
        output_dir, config, overwrite=args.overwrite, progress=not args.no_progress, workers=workers
    )
    done = manifest["seconds_per_subject_this_run"]
    print(
        f"dataset {output_dir}: {config.n_subjects} subjects ({len(done)} simulated, "
        f"{config.n_subjects - len(done)} already complete), preset {config.preset}, "
        f"DRF {', '.join(f'{d:g}' for d in config.drfs)}, {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
