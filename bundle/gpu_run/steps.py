"""The prepared GPU run: install the carried wheels, run the CUDA tests, simulate the `paper` preset, run the
paper-profile leave-one-out cross-validation (all folds side by side), and benchmark (the paper network, the shipped
model and the generalist GPU profile's network); on request also train and evaluate the generalist model at its GPU
profile (`generalist`); each step saves its whole
result under OUT as it ends, so a run cut short keeps every finished step. `--dry-run` runs the same steps on a CPU
with tiny settings (CI runs it)."""

from __future__ import annotations

import csv
import importlib
import json
import logging
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigValueError
from ..io import write_json

__all__ = ["DEFAULT_STEPS", "STEPS", "GpuRunSettings", "run_steps"]

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
MISSING_ON_THE_GPU_MACHINE = ["monai", "ignite", "mlflow", "nibabel", "nilearn"]
"""Imports the GPU image lacks (KINDS.md); the wheels of `scripts/gpu_wheels.sh` provide them."""


@dataclass
class GpuRunSettings:
    """What each step does; `dry()` gives the tiny CPU version of the same run."""

    preset: str = "paper"
    subjects: int = 9
    slices: int | None = None  # None: the preset's
    drfs: list[float] = field(default_factory=lambda: [2, 4, 10, 20, 50, 100, 200])
    profile: str = "paper-gpu"
    jobs: int = 9
    folds: list[int] | None = None
    dose_levels: list[str] = field(default_factory=lambda: ["all"])
    overrides: list[str] = field(default_factory=list)
    bench_shape: tuple[int, int, int] = (256, 256, 89)
    bench_repeat: int = 20
    train_steps: int = 20
    dry_run: bool = False
    # the generalist step (opt-in: --steps ... generalist): its cohort (settings over the generalist-train cohort's)
    # and training overrides (monai.bundle `--key value` pairs) on top of the generalist GPU profile
    generalist_cohort: dict[str, Any] = field(default_factory=dict)
    generalist_overrides: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def dry(cls) -> "GpuRunSettings":
        return cls(
            preset="tiny",
            subjects=3,
            slices=12,
            drfs=[20, 200],
            jobs=2,
            dose_levels=["20"],
            overrides=["num_epochs=1", "base_features=4", "slices_per_volume=8", "num_val_subjects=1"],
            bench_shape=(32, 32, 8),
            bench_repeat=2,
            train_steps=2,
            dry_run=True,
            generalist_cohort={"preset": "tiny", "n_subjects": 3, "drfs": [20.0, 200.0]},
            generalist_overrides={
                "num_epochs": 1,
                "base_features": 4,
                "slices_per_volume": 8,
                "num_val_subjects": 1,
                "train_drfs": [20, 200],
                "val_drfs": [20, 200],
                "val_interval": 1,
            },
        )


def _python(args: list[str], log: Path, timeout: float | None = None) -> tuple[int, str]:
    """Run `python args` from the repository root, its output appended to `log`; (exit code, last lines)."""
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"\n$ python {' '.join(args)}\n")
        fh.flush()
        proc = subprocess.run(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        fh.write(proc.stdout)
    return proc.returncode, "\n".join(proc.stdout.strip().splitlines()[-15:])


class GpuRun:
    """One run's state: settings, output folder, work folder, and the device."""

    def __init__(self, out: Path, settings: GpuRunSettings, work: Path) -> None:
        self.out, self.settings, self.work = out, settings, work
        self.log = work / "gpu_run.log"
        self.data_dir = work / f"data_{settings.preset}"
        self.cv_dir = work / "loocv"

    def save(self, name: str, result: dict[str, Any]) -> None:
        write_json(result, self.out / name, overwrite=True)

    # -- steps ---------------------------------------------------------------------------------------------
    def install(self) -> dict[str, Any]:
        """Install the carried wheels (no network, no dependency resolution) when an import is missing."""
        missing = [m for m in MISSING_ON_THE_GPU_MACHINE if importlib.util.find_spec(m) is None]
        wheels = sorted((REPO_ROOT / "wheels").glob("*.whl"))
        result: dict[str, Any] = {"missing_before": missing, "wheels": [w.name for w in wheels]}
        if missing:
            if not wheels:
                raise ConfigValueError(
                    f"wheels/: {missing} are not installed and no wheels were carried (run scripts/gpu_wheels.sh)"
                )
            rc, tail = _python(["-m", "pip", "install", "--no-index", "--no-deps", *map(str, wheels)], self.log)
            result.update(pip_exit=rc, pip_tail=tail)
            importlib.invalidate_caches()
        result["missing_after"] = [m for m in MISSING_ON_THE_GPU_MACHINE if importlib.util.find_spec(m) is None]
        result["ok"] = not result["missing_after"]
        return result

    def gpu_tests(self) -> dict[str, Any]:
        """`pytest -m gpu` (all skipped on a machine without CUDA)."""
        rc, tail = _python(
            ["-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider", "tests/test_gpu.py"], self.log
        )
        counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|error)", tail)}
        return {"exit": rc, "counts": counts, "tail": tail, "ok": rc == 0}

    def simulate(self) -> dict[str, Any]:
        s = self.settings
        started = time.perf_counter()
        if s.slices:
            code = (
                "import sys; from bundle.simulation import SimulationConfig, simulate_dataset; "
                f"simulate_dataset(sys.argv[1], SimulationConfig(preset={s.preset!r}, slices={s.slices}, "
                f"n_subjects={s.subjects}, seed=0, drfs={tuple(float(d) for d in s.drfs)}), progress=False)"
            )
            rc, tail = _python(["-c", code, str(self.data_dir)], self.log)
        else:
            args = ["scripts/simulate.py", "--output-dir", str(self.data_dir), "--subjects", str(s.subjects)]
            args += ["--preset", s.preset, "--seed", "0", "--no-progress", "--drf", *[f"{d:g}" for d in s.drfs]]
            rc, tail = _python(args, self.log)
        return {
            "exit": rc,
            "seconds": time.perf_counter() - started,
            "folder": str(self.data_dir),
            "tail": tail,
            "ok": rc == 0,
        }

    def crossval(self) -> dict[str, Any]:
        s = self.settings
        args = ["scripts/crossval.py", "--profile", s.profile, "--jobs", str(s.jobs), "--output-dir", str(self.cv_dir)]
        args += ["--dose-levels", *s.dose_levels]
        simulation = {"preset": s.preset, "n_subjects": s.subjects, "seed": 0, "drfs": [float(d) for d in s.drfs]}
        for o in [f"dataset_dir='{self.data_dir}'", f"simulation={simulation!r}", *s.overrides]:
            args += ["--override", o]
        if s.folds is not None:
            args += ["--folds", *map(str, s.folds)]
        started = time.perf_counter()
        rc, tail = _python(args, self.log)
        result: dict[str, Any] = {"exit": rc, "seconds": time.perf_counter() - started, "tail": tail}
        table = self.cv_dir / "summary_per_subject.csv"
        folds = sorted(self.cv_dir.glob("fold*/result.json"))
        if table.is_file():
            with open(table, newline="", encoding="utf-8") as fh:
                result["per_subject"] = list(csv.DictReader(fh))
        records = self.cv_dir / "summary_records.json"
        if records.is_file():
            result["records"] = json.loads(records.read_text())
        summary = self.cv_dir / "summary.md"
        result["summary_md"] = summary.read_text() if summary.is_file() else ""
        result["fold_results"] = [json.loads(f.read_text()) for f in folds]
        result["ok"] = rc == 0
        return result

    def generalist(self) -> dict[str, Any]:
        """The generalist model at its GPU profile: simulate its training cohort, train it (dose-conditioned, every
        DRF), and evaluate it on the simulated paper subjects through the shipped inference path
        (`scripts/evaluate_generalist.py`); the report's markdown is kept."""
        from ..mlflow_tracking import default_tracking_uri
        from ..simulation.cohorts import cohort

        s, started = self.settings, time.perf_counter()
        cohort_dir, run_dir, eval_dir = self.work / "generalist_train", self.work / "generalist", self.work / "gen_eval"
        settings = {**cohort("generalist-train").settings, **s.generalist_cohort, "drfs": None}
        settings["drfs"] = [float(d) for d in s.generalist_cohort.get("drfs", s.drfs)]
        code = (
            "import json, sys; from bundle.simulation import SimulationConfig, simulate_dataset; "
            "simulate_dataset(sys.argv[1], SimulationConfig(**json.loads(sys.argv[2])), progress=False)"
        )
        rc, tail = _python(["-c", code, str(cohort_dir), json.dumps(settings)], self.log)
        result: dict[str, Any] = {"simulate_exit": rc, "tail": tail, "ok": False}
        if rc != 0:
            return result
        files = "['configs/train.json','configs/profiles/generalist.json','configs/profiles/generalist_gpu.json']"
        overrides = {
            "dataset_dir": str(cohort_dir),
            "test_datalists": [str(self.data_dir / "datalist.json")],
            "output_dir": str(run_dir),
            "tracking#tracking_uri": default_tracking_uri(run_dir),  # the run's own store, never the repository's
            **s.generalist_overrides,
        }
        args = ["-m", "monai.bundle", "run", "training", "--config_file", files]
        for key, value in overrides.items():
            args += [f"--{key}", repr(value) if isinstance(value, str) else json.dumps(value)]
        rc, tail = _python(args, self.log)
        result.update(train_exit=rc, tail=tail, train_seconds=time.perf_counter() - started)
        if rc != 0:
            return result
        args = ["scripts/evaluate_generalist.py", "--run", f"gpu={run_dir / 'checkpoints'}", "--out", str(eval_dir)]
        args += ["--paper-datalist", str(self.data_dir / "datalist.json"), "--tuning-subjects", "2", "--no-progress"]
        args += ["--tuning-datalist", str(cohort_dir / "datalist.json"), "--drf", *[f"{d:g}" for d in settings["drfs"]]]
        for other in ("new-anatomy", "new-scanners", "new-scanners-native", "second-simulator"):
            args += [f"--{other}-datalist", ""]
        rc, tail = _python(args, self.log)
        report = eval_dir / "README.md"
        result.update(
            evaluate_exit=rc,
            tail=tail,
            seconds=time.perf_counter() - started,
            report_md=report.read_text() if report.is_file() else "",
            ok=rc == 0,
        )
        return result

    def benchmark(self) -> dict[str, Any]:
        import torch

        from .benchmark import gpu_benchmark

        s = self.settings
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        result = gpu_benchmark(device, shape=s.bench_shape, repeat=s.bench_repeat, train_steps=s.train_steps)
        return dict(result, device=str(device), ok=True)


STEPS: dict[str, tuple[str, Callable[[GpuRun], dict[str, Any]]]] = {
    "install": ("install.json", GpuRun.install),
    "tests": ("gpu_tests.json", GpuRun.gpu_tests),
    "simulate": ("simulation.json", GpuRun.simulate),
    "crossval": ("crossval.json", GpuRun.crossval),
    "benchmark": ("benchmark.json", GpuRun.benchmark),
    "generalist": ("generalist.json", GpuRun.generalist),
}
DEFAULT_STEPS = ["install", "tests", "simulate", "crossval", "benchmark"]
"""The steps a plain run takes; `generalist` (cohort, training and evaluation at the generalist GPU profile, longer
than one lent machine's 15 minutes) is asked for with `--steps ... generalist`."""


def environment() -> dict[str, Any]:
    import platform

    import torch

    from ..benchmark.measure import machine_description

    return {
        "machine": machine_description(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
    }


def run_steps(out: Path, settings: GpuRunSettings, steps: list[str], work: Path, command: str) -> dict[str, Any]:
    """Run `steps` in order; every step's JSON is saved as it ends and run.json after each step."""
    from .summary import write_summary

    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ConfigValueError(f"setting --steps: unknown {unknown}; choose from {list(STEPS)}")
    run = GpuRun(out, settings, work)
    started = time.perf_counter()
    state: dict[str, Any] = {"command": command, "settings": asdict(settings), "environment": None, "steps": {}}
    for name in steps:
        file, step = STEPS[name]
        t0 = time.perf_counter()
        logger.info("step %s ...", name)
        try:
            result = step(run)
        except Exception as exc:  # noqa: BLE001 - a failed step is recorded and the run goes on with the next
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        result["step_seconds"] = time.perf_counter() - t0
        run.save(file, result)
        state["steps"][name] = {"ok": bool(result.get("ok")), "seconds": result["step_seconds"], "file": file}
        if name == "install" or state["environment"] is None:
            try:
                state["environment"] = environment()
            except Exception as exc:  # noqa: BLE001 - torch itself missing is recorded, not fatal
                state["environment"] = {"error": str(exc)}
        state["seconds"] = time.perf_counter() - started
        run.save("run.json", state)
        logger.info("step %s: %s in %.0f s", name, "ok" if result.get("ok") else "FAILED", result["step_seconds"])
    write_summary(out)
    return state
