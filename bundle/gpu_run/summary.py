"""The GPU run's results as markdown: `OUT/summary.md` on the GPU machine, and the same tables for docs/ on the CPU
side (`scripts/gpu_report.py`), with the issue's targets judged from the measured numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputDataError
from ..io import read_json, write_text

__all__ = ["check_run_results", "load_results", "is_dry_run", "results_markdown", "write_summary", "TARGETS"]

TARGETS = {
    "cv_minutes": 8.0,  # paper-profile 9-fold CV incl. simulation and evaluation
    "ms_per_slice_bf16_w32": 0.2,
    "ms_per_volume_bf16_w32": 50.0,
    "gain_over_low_db": 6.0,
    "nrmse_ratio": 0.5,
    "gain_over_gaussian_db": 1.5,
}


def load_results(out: str | Path) -> dict[str, Any]:
    """Every JSON file of a GPU run folder, by stem (missing steps are absent); a malformed file is named."""
    out = Path(out)
    return {p.stem: read_json(p, "GPU run result") for p in sorted(out.glob("*.json"))}


RUN_FIELDS = {"command": str, "settings": dict, "environment": dict, "steps": dict, "seconds": (int, float)}


def check_run_results(results: dict[str, Any], out: str | Path) -> None:
    """Refuse (one line, naming the file and field) a folder whose run.json lacks what a real run writes: its
    command, settings, environment, timing and steps, each step with its result file present."""
    run = results.get("run")
    where = Path(out) / "run.json"
    if not isinstance(run, dict):
        raise InputDataError(f"{where}: expected the JSON object a GPU run writes, got {type(run).__name__}")
    for field, kind in RUN_FIELDS.items():
        if not isinstance(run.get(field), kind):
            raise InputDataError(f"{where}: field '{field}' is missing or not a {getattr(kind, '__name__', 'number')}")
    if not run["steps"]:
        raise InputDataError(f"{where}: no steps were run")
    for name, step in run["steps"].items():
        if not isinstance(step, dict) or not {"ok", "seconds", "file"} <= set(step):
            raise InputDataError(f"{where}: step '{name}' lacks ok, seconds or file")
        if Path(str(step["file"])).stem not in results:
            raise InputDataError(f"{Path(out) / str(step['file'])}: missing; step '{name}' wrote no result")


def _f(v: Any, digits: int = 2) -> str:
    try:
        return f"{float(v):.{digits}f}"
    except (TypeError, ValueError):
        return str(v)


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _crossval_lines(cv: dict[str, Any], sim: dict[str, Any] | None) -> list[str]:
    rows = cv.get("per_subject") or []
    if not rows:
        return [f"Cross-validation: no per-subject table ({cv.get('error') or 'exit ' + str(cv.get('exit'))})."]
    lines = [
        "| subject | low dose PSNR | Gaussian PSNR | network PSNR | over low dose [dB] | over Gaussian [dB] | NRMSE ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    gains, margins, ratios = [], [], []
    for r in rows:
        low, gauss, net = (float(r[f"{m}_psnr"]) for m in ("low_dose", "gaussian", "network"))
        ratio = float(r["network_nrmse"]) / float(r["low_dose_nrmse"])
        gains.append(net - low)
        margins.append(net - gauss)
        ratios.append(ratio)
        lines.append(
            f"| {r.get('subject', r.get('test_subject'))} | {_f(low)} | {_f(gauss)} | {_f(net)} | {_f(net - low)} | "
            f"{_f(net - gauss)} | {_f(ratio, 3)} |"
        )
    minutes = (cv.get("seconds", 0.0) + (sim or {}).get("seconds", 0.0)) / 60.0
    lines += [
        "",
        f"- every subject >= +{TARGETS['gain_over_low_db']} dB over low dose: {_verdict(min(gains) >= TARGETS['gain_over_low_db'])} "
        f"(worst {_f(min(gains))} dB)",
        f"- every subject NRMSE <= {TARGETS['nrmse_ratio']} x low dose: {_verdict(max(ratios) <= TARGETS['nrmse_ratio'])} "
        f"(worst {_f(max(ratios), 3)})",
        f"- every subject >= +{TARGETS['gain_over_gaussian_db']} dB over the tuned Gaussian: "
        f"{_verdict(min(margins) >= TARGETS['gain_over_gaussian_db'])} (worst {_f(min(margins))} dB)",
        f"- simulation + cross-validation in <= {TARGETS['cv_minutes']:g} min: {_verdict(minutes <= TARGETS['cv_minutes'])} "
        f"({_f(minutes, 1)} min: simulation {_f((sim or {}).get('seconds', 0) / 60, 1)}, cross-validation "
        f"{_f(cv.get('seconds', 0) / 60, 1)})",
    ]
    return lines


def _network_name(row: dict[str, Any]) -> str:
    """The benchmarked network of a row (runs before the generalist rows timed plain networks of width 16 and 32)."""
    if "network" in row:
        return str(row["network"])
    return "paper" if row["base_features"] == 32 else f"plain, width {row['base_features']}"


def _benchmark_lines(bench: dict[str, Any]) -> list[str]:
    rows = bench.get("inference") or []
    if not rows:
        return [f"Benchmark: no results ({bench.get('error', 'not run')})."]
    shape = "x".join(str(s) for s in bench.get("shape", []))
    lines = [
        f"Inference on {bench.get('device')}, volume {shape}, every slice in one batch:",
        "",
        "| network | width | precision | ms per slice | ms per volume (incl. transfers) | speed-up over fp32 |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {_network_name(r)} | {r['base_features']} | {r['precision']} | {_f(r['ms_per_slice'], 3)} | "
            f"{_f(r['ms_per_volume_incl_transfers'], 1)} | {_f(r['speedup_over_fp32'])} |"
        )
    lines += ["", "| network | width | training slices / s (bf16 autocast where available) |", "|---|---|---|"]
    lines += [
        f"| {_network_name(t)} | {t['base_features']} | {_f(t['slices_per_second'], 0)} |"
        for t in bench.get("training", [])
    ]
    paper = [r for r in rows if _network_name(r) == "paper" and r["precision"] == "bf16"]
    if paper and bench.get("shape") == [256, 256, 89]:
        r = paper[0]
        lines += [
            "",
            f"- paper width, bf16, <= {TARGETS['ms_per_slice_bf16_w32']} ms per slice: "
            f"{_verdict(r['ms_per_slice'] <= TARGETS['ms_per_slice_bf16_w32'])} ({_f(r['ms_per_slice'], 3)} ms)",
            f"- paper width, bf16, <= {TARGETS['ms_per_volume_bf16_w32']:g} ms per volume: "
            f"{_verdict(r['ms_per_volume_incl_transfers'] <= TARGETS['ms_per_volume_bf16_w32'])} "
            f"({_f(r['ms_per_volume_incl_transfers'], 1)} ms)",
        ]
    return lines


def _header_lines(results: dict[str, Any], heading: str) -> list[str]:
    run = results.get("run", {})
    env = run.get("environment") or {}
    lines = [
        f"{heading} GPU run{' (dry run on a CPU, tiny settings: not a measurement)' if is_dry_run(results) else ''}",
        "",
        f"Machine: {env.get('machine', '?')}; GPU: {env.get('gpu') or 'none'}; torch {env.get('torch', '?')}, "
        f"CUDA {env.get('cuda') or '-'}, Python {env.get('python', '?')}.",
        f"Command: `{run.get('command', '?')}`; {_f(run.get('seconds', 0) / 60, 1)} min in all.",
    ]
    return lines


def is_dry_run(results: dict[str, Any]) -> bool:
    """Whether the folder holds a dry run (tiny settings on any device), which measures nothing."""
    return bool((results.get("run", {}).get("settings") or {}).get("dry_run"))


def results_markdown(
    results: dict[str, Any], heading: str = "##", parts: tuple[str, ...] = ("steps", "crossval", "benchmark")
) -> str:
    """The run's tables: the environment and command, then the chosen parts: `steps` (each step's result and the
    CUDA tests), `crossval` (per subject, with its targets judged), `benchmark` (inference and training)."""
    lines = _header_lines(results, heading)
    if "steps" in parts:
        lines += ["", "| step | result | seconds |", "|---|---|---|"]
        for name, step in (results.get("run", {}).get("steps") or {}).items():
            lines.append(f"| {name} | {'ok' if step['ok'] else '**failed**'} | {_f(step['seconds'], 0)} |")
        tests = results.get("gpu_tests")
        if tests:
            lines += ["", f"CUDA tests (`pytest -m gpu`): {tests.get('counts')}."]
    if "crossval" in parts and "crossval" in results:
        lines += ["", f"{heading}# Paper-profile leave-one-out cross-validation", ""]
        lines += _crossval_lines(results["crossval"], results.get("simulation"))
    if "benchmark" in parts and "benchmark" in results:
        lines += ["", f"{heading}# Benchmark", ""] + _benchmark_lines(results["benchmark"])
    return "\n".join(lines) + "\n"


def write_summary(out: str | Path) -> Path:
    return write_text(results_markdown(load_results(out)), Path(out) / "summary.md", overwrite=True)
