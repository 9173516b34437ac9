#!/usr/bin/env python
"""The paper at full scale on one GPU, as one prepared command (issue 18).

Installs the carried wheels (`wheels/`, from scripts/gpu_wheels.sh), runs the CUDA tests, simulates the `paper`
preset, runs the paper-profile leave-one-out cross-validation with all 9 folds side by side, benchmarks, and writes
at most 8 files under OUT (JSON per step, run.json, summary.md). `--dry-run` runs the same steps on a CPU with tiny
settings. Turn OUT into docs/ updates with `python scripts/gpu_report.py OUT`.

Examples:
    python scripts/gpu_run.py "$OUT"                               # on the GPU machine
    python scripts/gpu_run.py /tmp/gpu_out --dry-run               # anywhere (CI)
    python scripts/gpu_run.py "$OUT" --steps crossval benchmark    # a part of the run again
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors
from bundle.gpu_run.steps import DEFAULT_STEPS, STEPS, GpuRunSettings, run_steps
from bundle.io import ensure_writable_dir


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="folder for the run's files (at most 8)")
    p.add_argument("--dry-run", action="store_true", help="tiny settings, any device (CI)")
    p.add_argument(
        "--steps",
        nargs="+",
        default=list(DEFAULT_STEPS),
        help=f"steps to run, in order, of {list(STEPS)} (default {DEFAULT_STEPS})",
    )
    p.add_argument("--work-dir", default=None, help="data, runs and the log (default a temporary folder)")
    p.add_argument("--jobs", type=int, default=None, help="folds at once (default 9; 2 in a dry run)")
    p.add_argument("--dose-levels", nargs="+", default=None, help="dose levels each fold is evaluated at (default all)")
    p.add_argument("--override", action="append", default=[], help="config override for the cross-validation")
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    settings = GpuRunSettings.dry() if args.dry_run else GpuRunSettings()
    if args.jobs:
        settings.jobs = args.jobs
    if args.dose_levels:
        settings.dose_levels = list(args.dose_levels)
    settings.overrides += list(args.override)
    out = ensure_writable_dir(args.out, "GPU run output folder")
    work = ensure_writable_dir(args.work_dir or tempfile.mkdtemp(prefix="gpu_run_"), "GPU run work folder")
    command = "python scripts/gpu_run.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    state = run_steps(out, settings, list(args.steps), work, command)
    failed = [name for name, s in state["steps"].items() if not s["ok"]]
    print((out / "summary.md").read_text())
    print(f"work folder (data, runs, log): {work}")
    if failed:
        print(f"error: GPU run: steps {failed} failed; see {out}/<step>.json and {work}/gpu_run.log", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
