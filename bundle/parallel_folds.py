"""Several cross-validation folds at once: each group of folds in its own process, all logging to one MLflow store.

On a GPU the folds of the CPU-sized default and even of the paper profile leave most of the device idle, so the
9 folds run side by side (`scripts/crossval.py --jobs 9`); on a CPU each process gets `cores / jobs` threads. The
parent creates the MLflow experiment before the workers start (so they never race to create the schema), waits for
all of them, names every failed worker with its log, and writes the summary once every fold is complete.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from .errors import ConfigValueError, InputDataError

__all__ = ["fold_groups", "run_fold_processes"]

logger = logging.getLogger(__name__)


def fold_groups(folds: Sequence[int], jobs: int) -> list[list[int]]:
    """`folds` dealt round-robin into at most `jobs` non-empty groups."""
    if jobs < 1:
        raise ConfigValueError(f"setting --jobs: expected a positive number of processes, got {jobs}")
    groups = [list(folds[k::jobs]) for k in range(min(jobs, len(folds)))]
    return [g for g in groups if g]


def run_fold_processes(
    script: str | Path,
    worker_args: Sequence[str],
    folds: Sequence[int],
    jobs: int,
    log_dir: str | Path,
    threads_per_job: int | None = None,
) -> float:
    """Run `python script *worker_args --folds <group>` for each group of folds at once; the seconds it took.

    Each worker's output goes to `log_dir/folds-<group>.log`. Raises `InputDataError` naming every failed group
    and its log when any worker fails (the folds that finished keep their results: a rerun only runs the rest).
    """
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    groups = fold_groups(list(folds), jobs)
    threads = threads_per_job or max(1, (os.cpu_count() or 1) // len(groups))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    started = time.perf_counter()
    workers = []
    for group in groups:
        name = "folds-" + "-".join(str(f) for f in group)
        log = open(log_dir / f"{name}.log", "w", encoding="utf-8")  # noqa: SIM115 - closed after the wait below
        cmd = [sys.executable, str(script), *worker_args, "--folds", *[str(f) for f in group]]
        workers.append((name, log, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)))
        logger.info("started folds %s (process %d, log %s)", group, workers[-1][2].pid, log.name)
    failed = []
    try:
        for name, log, proc in workers:
            if proc.wait() != 0:
                failed.append(f"{name} (exit {proc.returncode}, log {log.name})")
            log.close()
    except KeyboardInterrupt:
        for _, _, proc in workers:
            proc.terminate()
        raise
    if failed:
        raise InputDataError(
            f"cross-validation: {len(failed)} of {len(workers)} fold processes failed: " + "; ".join(failed)
        )
    return time.perf_counter() - started
