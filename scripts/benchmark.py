#!/usr/bin/env python
"""One run that measures inference paths, baselines, efficiency, memory, scaling,
training and simulator throughput side by side, prints the table and writes docs/performance.md."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root, so `bundle` imports from any folder

from bundle.command_line import OneLineArgumentParser
from bundle.errors import cli_errors


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="benchmark.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/performance.md")
    p.add_argument("--data-root", default="data/benchmark")
    p.add_argument("--quick", action="store_true", help="fewer repeats and sizes (smoke test)")
    p.add_argument(
        "--skip",
        nargs="*",
        default=[],
        help="sections to skip: batches profile study baselines memory scaling training simulator precision load",
    )
    return p


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_and_log(argv)
    from bundle.benchmark.report import benchmark_report
    from bundle.gpu_run.docs_update import generated_block, replace_block
    from bundle.io import write_text

    command = "python scripts/benchmark.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    report = benchmark_report(command, args.data_root, args.quick, args.skip)
    previous = Path(args.out).read_text(encoding="utf-8") if Path(args.out).is_file() else ""
    gpu_block = generated_block(previous)
    if gpu_block is not None:  # the GPU run's section (scripts/gpu_report.py) is not this command's to drop
        report = replace_block(report, gpu_block)
    write_text(report, args.out, overwrite=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
