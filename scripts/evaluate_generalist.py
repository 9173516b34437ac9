#!/usr/bin/env python
"""Evaluate trained generalist runs at every dose level of the test sets (the paper's 9 subjects, the new-anatomy
cohort and, when simulated, the new-scanners cohort on the 2 mm grid and on its own grids) through the shipped
inference path, against the input, a Gaussian tuned leave-one-out on each test set (the targets' reference) and one
tuned per DRF on the training cohort; writes OUT/README.md (targets, per-DRF, lesion and paired tables) and
OUT/results.json (every record).

    python scripts/evaluate_generalist.py --run conditioned=runs/generalist/conditioned-l1/checkpoints --out docs/generalist
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import ConfigValueError, InputDataError, cli_errors
from bundle.simulation.presets import DOSE_CHAIN

logger = logging.getLogger("evaluate_generalist")

NO_RESTORE = {"hot_uptake_restore": None}
OUTPUT_VARIANTS = {  # each names every setting of the output on the study's grid, whatever the default is
    "resampled": {"native_grid_correction": False, **NO_RESTORE},  # bundle 0.2.0's output
    "all-detail": {"detail_drf": None, "detail_reading": None, "detail_local_gain": None, **NO_RESTORE},  # w = 1
    "drf-rule": {"detail_reading": None, "detail_local_gain": None, **NO_RESTORE},  # 0.3.0: w = 1 / (1 + DRF / ...)
    "image-gain": {"detail_reading": "@detail_reading_line", "detail_local_gain": None, **NO_RESTORE},  # 0.3.1
    "local-gain": {  # 0.3.2: that w raised voxel by voxel where the band holds more than noise
        "detail_reading": "@detail_reading_line",
        "detail_local_gain": "@detail_local_gain_setting",
        **NO_RESTORE,
    },
    "hot-uptake": {  # and the hot-focus uptake restore (transforms.hot_uptake)
        "detail_reading": "@detail_reading_line",
        "detail_local_gain": "@detail_local_gain_setting",
        "hot_uptake_restore": "@hot_uptake_restore_setting",
    },
}


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="evaluate_generalist.py", description=__doc__.splitlines()[0])
    p.add_argument(
        "--run",
        nargs="+",
        required=True,
        help="NAME=SOURCE of each trained network (first: proposed); SOURCE is a training run's checkpoints folder or a "
        "released weights file with its provenance beside it (models/model.pt)",
    )
    p.add_argument("--paper-datalist", default="data/simulated_quick/datalist.json")
    p.add_argument("--new-anatomy-datalist", default="data/cohorts/new_anatomy/datalist.json")
    p.add_argument(
        "--new-scanners-datalist",
        default="data/cohorts/new_scanners/datalist.json",
        help="a further test set, used when the file exists (python scripts/simulate.py --cohort new-scanners)",
    )
    p.add_argument(
        "--new-scanners-native-datalist",
        default="data/cohorts/new_scanners_native/datalist.json",
        help="the new-scanners subjects on their own grids (off the training grid), used when the file exists "
        "(python scripts/simulate.py --cohort new-scanners-native)",
    )
    p.add_argument(
        "--second-simulator-datalist",
        default="data/cohorts/second_simulator/datalist.json",
        help="the independent simulator's cohort, used when the file exists (python scripts/simulate_independent.py)",
    )
    p.add_argument(
        "--tuning-datalist",
        default="data/cohorts/generalist_train/datalist.json",
        help="training cohort the second Gaussian is tuned on ('' for none)",
    )
    p.add_argument("--tuning-subjects", default="12", help="training-cohort subjects the Gaussian is tuned on")
    p.add_argument(
        "--detail-tuning-datalist",
        default="data/cohorts/generalist_train_native/datalist.json",
        help="native-grid tuning cohort a training run's detail gain is fitted on, as the shipped model's was "
        "(scripts/fit_detail_gain.py), when a test set is off the 2 mm grid and the run has none recorded; '' keeps "
        "such a run's sub-grid detail whole",
    )
    p.add_argument(
        "--baselines",
        nargs="+",
        default=["gaussian"],
        help="classical baselines tuned at each DRF on the tuning subjects, beside the Gaussian: e.g. gaussian "
        "bilateral guided (the edge-preserving filters lesion studies compare with)",
    )
    p.add_argument(
        "--baseline-tuning-subjects",
        default=None,
        help="tuning subjects of the baselines other than the Gaussian (default: --tuning-subjects; the bilateral "
        "filter takes seconds per volume)",
    )
    p.add_argument(
        "--output-variants",
        nargs="*",
        default=[],
        choices=sorted(OUTPUT_VARIANTS),
        help="also run the proposed (first) network with another output on the study's grid: 'resampled' (bundle "
        "0.2.0: the prediction resampled back), 'all-detail' (the correction added to the untouched input, every "
        "sub-grid detail kept), 'drf-rule' (bundle 0.3.0's gain w = 1 / (1 + DRF / detail_drf) instead of the one "
        "read from each study), 'image-gain' (bundle 0.3.1: one gain read from each study by configs/inference.json's "
        "detail_reading_line), 'local-gain' (that gain raised voxel by voxel where the band holds more than noise: "
        "configs/inference.json's detail_local_gain_setting; bundle 0.3.2), 'hot-uptake' (0.3.2's output with the "
        "hot-focus uptake restore, configs/inference.json's hot_uptake_restore_setting); each names every setting of "
        "the output, whatever the default is",
    )
    p.add_argument("--drf", nargs="+", default=[f"{d:g}" for d in DOSE_CHAIN], help="dose levels (default 2-200)")
    p.add_argument(
        "--estimated-drf",
        action="store_true",
        help="also run the proposed (first) network, when it is dose-conditioned, on the DRF estimated from the image "
        "(fitted on the tuning subjects) instead of the true one",
    )
    p.add_argument(
        "--noise-estimator",
        default=None,
        help="a noise estimator's record: also run the proposed (first) network, when it is dose-conditioned on DRF "
        "labels, with no DRF given, its code read from each image by this estimator (as inference does with a shipped "
        "one); runs trained on image codes (configs/profiles/image_coded.json) always read their own",
    )
    p.add_argument("--out", default="docs/generalist", help="report folder (README.md and results.json rewritten)")
    p.add_argument(
        "--from-results",
        action="store_true",
        help="rebuild OUT/README.md from OUT/results.json without evaluating again",
    )
    p.add_argument("--command", default=None, help="the command line to print in the report (default: this one)")
    p.add_argument("--no-progress", action="store_true")
    return p


def _runs(specs: Sequence[str]) -> dict[str, str]:
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigValueError(f"setting run: expected NAME=CHECKPOINTS_DIR or NAME=WEIGHTS_FILE, got {spec!r}")
        out[name] = path
    return out


def _refuse_overlap(name: str, settings: dict, test_sets: dict[str, str]) -> None:
    """Refuse (one line) to give test metrics to a run whose training data hold a test subject (by name within one
    dataset, or by content: `data.folds.assert_fold_isolation`)."""
    from bundle.data import load_datalist
    from bundle.data.folds import assert_fold_isolation

    datalist = str(settings.get("datalist_file") or "")
    if not datalist or not Path(datalist).is_file():
        return
    train = load_datalist(datalist)
    for test_set, path in test_sets.items():
        tests = [dict(item, subject=f"{test_set}:{item['subject']}") for item in load_datalist(path)]
        same = Path(path).resolve() == Path(datalist).resolve()
        try:
            if same:
                raise InputDataError(f"fold isolation: the test set {test_set} is the training datalist {datalist}")
            assert_fold_isolation(train, [], tests)
        except InputDataError as exc:
            raise InputDataError(f"run '{name}': {exc}; it cannot be tested on {path}") from None


def _is_dose_blind(checkpoints: str) -> bool:
    """Whether a training run's network takes no dose code (it is then given no DRF, so it has no DRF rule to fit)."""
    from bundle.deploy.trained_denoiser import run_settings
    from bundle.provenance import recorded_setting

    return not recorded_setting(run_settings(checkpoints)[0], "dose_conditioning", False)


def _missing_mr(checkpoints: str, datalist: str) -> list[str]:
    """The MR keys a training run's network reads (its `extra_keys` but the dose code) that some item of `datalist`
    lacks."""
    from bundle.data import load_datalist
    from bundle.deploy.trained_denoiser import run_mr_keys, run_settings

    keys = run_mr_keys(run_settings(checkpoints)[0])
    items = load_datalist(datalist)
    return [k for k in keys if any(not item.get(k) for item in items)]


def _fit_missing_detail_gains(runs: dict[str, str], datalist: str, drfs: Sequence[float] = DOSE_CHAIN) -> None:
    """Fit and record the detail gain of each training run (a checkpoints folder) that has none, on `datalist`, as
    the shipped weights' was: a run evaluated off the 2 mm grid without it would keep all its sub-grid noise."""
    from bundle.deploy.export import RUN_WEIGHTS, record_run_entry, run_provenance_file
    from bundle.deploy.study_denoiser import recorded_detail_drf
    from bundle.generalist.detail_gain import fit_detail_drf

    for name, path in runs.items():
        if not Path(path).is_dir() or recorded_detail_drf(run_provenance_file(path), Path(path) / RUN_WEIGHTS):
            continue
        if _is_dose_blind(path):
            logger.info("run '%s' is dose-blind: it is given no DRF, so its detail gain is read from each study", name)
            continue
        if not Path(datalist).is_file():
            raise InputDataError(
                f"setting detail-tuning-datalist: {datalist} is missing, so run '{name}' cannot have its detail gain "
                "fitted (python scripts/simulate.py --cohort generalist-train-native, or '' to keep its detail whole)"
            )
        missing = _missing_mr(path, datalist)
        if missing:
            raise InputDataError(
                f"setting detail-tuning-datalist: run '{name}' reads each study's {' and '.join(missing)}, which "
                f"{datalist} does not give (python scripts/simulate_mr.py makes a cohort's MR; '' leaves the run's "
                "detail gain unfitted: the default output reads it from each study)"
            )
        fit = fit_detail_drf(path, datalist, drfs)
        record_run_entry(path, "detail_gain", fit)
        logger.info("run '%s': detail_drf %g fitted on %s and recorded", name, fit["detail_drf"], datalist)


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.benchmark.measure import machine_description
    from bundle.generalist import TrainedDenoiser, evaluate_test_sets, tuned_filters, tuned_gaussians
    from bundle.generalist.report import REFERENCE, report_lines
    from bundle.generalist.study import GAUSSIAN, INPUT, fit_cohort_drf_estimator
    from bundle.io import ensure_writable_dir, file_sha256, load_ras_volume, read_json, write_json, write_text
    from bundle.metrics.dose_estimation import estimate_drf
    from bundle.provenance import recorded_setting

    runs = _runs(args.run)
    drfs = [float(d) for d in args.drf]
    out = ensure_writable_dir(args.out, "setting out")
    if args.from_results:
        results = read_json(out / "results.json", "generalist results")
        records, gaussians, estimator = results["records"], results["gaussian"], results.get("drf_estimator")
        baseline_params = results.get("baselines", {})
        args.noise_estimator = results.get("noise_estimator")
        methods, seconds = (
            list(
                dict.fromkeys(
                    r["method"] for r in records if r["method"] not in (INPUT, GAUSSIAN, REFERENCE, *baseline_params)
                )
            ),
            results["seconds"],
        )
        settings, runs, weights = results["settings"], results["runs"], results.get("weights_sha256", {})
        detail_drfs = results.get("detail_drf", {})
    else:
        if not args.paper_datalist or not Path(args.paper_datalist).is_file():
            raise ConfigValueError(
                f"setting paper-datalist: {args.paper_datalist!r} is not a datalist file; the paper subjects are every "
                "report's reference set (python scripts/simulate.py --output-dir data/simulated_quick --drf chain)"
            )
        start = time.perf_counter()
        off_grid = [
            d for d in (args.new_scanners_native_datalist, args.second_simulator_datalist) if d and Path(d).is_file()
        ]
        if off_grid and args.detail_tuning_datalist:
            _fit_missing_detail_gains(runs, args.detail_tuning_datalist)
        denoisers = {name: TrainedDenoiser(path) for name, path in runs.items()}
        tuned = tuned_gaussians(args.tuning_datalist, drfs, int(args.tuning_subjects)) if args.tuning_datalist else {}
        gaussians = {f"{d:g}": g.params for d, g in tuned.items()}
        others = [b for b in args.baselines if b != GAUSSIAN]
        filters = {}
        if others and args.tuning_datalist:
            subjects = int(args.baseline_tuning_subjects or args.tuning_subjects)
            filters = tuned_filters(args.tuning_datalist, drfs, subjects, others)
        baseline_params = {m: {f"{d:g}": t.params for d, t in by.items()} for m, by in filters.items()}
        calls = {  # an image-coded run is given no DRF: it reads its code from each image, as users run it
            n: (lambda study, drf, item, d=d: d(study, None, item)) if d.image_coded else d
            for n, d in denoisers.items()
        }
        name, path = next(iter(runs.items()))
        if args.noise_estimator and denoisers[name].dose_conditioned and not denoisers[name].image_coded:
            from bundle.noise_estimation import NoiseEstimator

            read = TrainedDenoiser(path, overrides={"noise_estimator": NoiseEstimator.load(args.noise_estimator)})
            calls[f"{name}, image code"] = lambda study, drf, item, d=read: d(study, None, item)
        for variant in args.output_variants:
            calls[f"{name}, {variant} output"] = TrainedDenoiser(path, overrides=OUTPUT_VARIANTS[variant])
        estimator = None
        if args.estimated_drf:
            estimator = fit_cohort_drf_estimator(args.tuning_datalist, drfs, int(args.tuning_subjects))
            name, denoiser = next(iter(denoisers.items()))
            if denoiser.dose_conditioned:
                top = denoiser.denoiser.dose_input.trained_range[1]  # as inference lowers an image DRF to the top
                calls[f"{name}, estimated DRF"] = lambda path, drf, item, d=denoiser, top=top: d(
                    path, min(estimate_drf(load_ras_volume(path), estimator), top), item
                )
        test_sets = {"paper": args.paper_datalist}
        for test_set, datalist in (
            ("new-anatomy", args.new_anatomy_datalist),
            ("new-scanners", args.new_scanners_datalist),
            ("new-scanners-native", args.new_scanners_native_datalist),
            ("second-simulator", args.second_simulator_datalist),
        ):
            if datalist and Path(datalist).is_file():
                test_sets[test_set] = datalist
        for name, denoiser in denoisers.items():
            _refuse_overlap(name, denoiser.settings, test_sets)
        baselines = {GAUSSIAN: tuned, **filters}
        records = evaluate_test_sets(test_sets, drfs, calls, baselines, progress=not args.no_progress)
        methods, seconds = list(calls), time.perf_counter() - start
        settings = {n: d.settings for n, d in denoisers.items()}
        detail_drfs = {n: d.detail_drf for n, d in denoisers.items()}
        weights = {n: file_sha256(d.weights_file) for n, d in denoisers.items()}
    shown = list(records)
    command = args.command or "python scripts/evaluate_generalist.py " + shlex.join(argv or sys.argv[1:])
    names = {INPUT: "input", GAUSSIAN: "Gaussian", **{n: n for n in methods}}
    names.update({"bilateral": "bilateral filter", "guided": "guided filter", "guided-t1": "guided filter (T1 guide)"})
    header = [
        "# The generalist model: every dose level, lesions, new anatomy and scanners",
        "",
        f"Generated by `{command}` ({seconds / 60:.1f} min on {machine_description()}). Runs: "
        + ", ".join(f"{n} = `{p}`" for n, p in runs.items())
        + (
            f". Gaussian tuned at each DRF on the first {args.tuning_subjects} subjects of `{args.tuning_datalist}`: "
            + ", ".join(f"DRF {d} {g}" for d, g in gaussians.items())
            if gaussians
            else ". No training-cohort Gaussian"
        )
        + ".",
        "",
    ]
    if detail_drfs:
        header += [
            "Sub-grid detail kept on a study's own grid (`detail_drf` of the Wiener gain, fitted per network on "
            "a native-grid tuning cohort; none: kept whole): "
            + ", ".join(f"{n} {'none' if v is None else f'{v:g}'}" for n, v in detail_drfs.items())
            + ".",
            "",
        ]
    if baseline_params:
        header += [
            "Edge-preserving baselines tuned at each DRF on the first "
            f"{args.baseline_tuning_subjects or args.tuning_subjects} subjects of the same cohort: "
            + "; ".join(
                f"{names.get(m, m)}: " + ", ".join(f"DRF {d} {p}" for d, p in by.items())
                for m, by in baseline_params.items()
            )
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
    image_coded = [n for n, p in settings.items() if recorded_setting(p, "dose_code_source") == "image"]
    if image_coded or any(m.endswith(", image code") for m in methods):
        header += [
            "Given no DRF (the code read from each image by a noise estimator, as inference does without `--drf`): "
            + ", ".join(f"`{m}`" for m in [*image_coded, *(m for m in methods if m.endswith(", image code"))])
            + (f" (estimator `{args.noise_estimator}`)" if args.noise_estimator else "")
            + "; every other network is given each study's true DRF.",
            "",
        ]
    if any(r["method"] == REFERENCE for r in shown):
        names[REFERENCE] = "Gaussian (LOO on the test set)"
        header += [
            f"`{REFERENCE}`, the targets' reference: for each test subject, the 3D Gaussian (in-plane and axial FWHM "
            "0-10 / 0-8 mm, 0 = no filtering) tuned at each DRF on the other subjects of its own test set, so on the "
            "protocol it is applied to; the Gaussian tuned on the training cohort (`gaussian`) is shown beside it.",
            "",
        ]
    if args.output_variants:
        header += [
            "Output variants of the first network (`--output-variants`; each names every setting of the output): "
            "`, resampled output` is bundle 0.2.0's (the prediction resampled from the 2 mm grid back to the "
            "study's); `, all-detail output` adds the resampled correction to the untouched input; `, drf-rule`, "
            "`, image-gain` and `, local-gain output` are bundles 0.3.0, 0.3.1 and 0.3.2's sub-grid detail gains "
            "(bundle/transforms/native_grid.py); these differ only on test sets off the 2 mm grid. `, hot-uptake "
            "output` adds the hot-focus uptake restore (bundle/transforms/hot_uptake.py), which acts on every grid.",
            "",
        ]
    lines = report_lines(shown, list(methods), next(iter(runs)), drfs, header, names, baselines=list(baseline_params))
    results = {
        "command": command,
        "runs": runs,
        "settings": settings,
        "weights_sha256": weights,
        "detail_drf": detail_drfs,
        "gaussian": gaussians,
        "baselines": baseline_params,
        "drf_estimator": estimator,
        "noise_estimator": args.noise_estimator,
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
