"""The benchmark report: inference paths, baselines, efficiency, memory, scaling, training and simulator throughput,
measured side by side in one run, with the ratios and the performance targets, as the markdown of
docs/performance.md."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..deploy.inference_paths import default_inference_path
from .measure import (
    benchmark_volume,
    build_network,
    conv_flops_per_slice,
    machine_description,
    shipped_weights,
    training_slices_per_second,
)
from .performance_md import performance_markdown
from .tasks import run_task_in_subprocess

__all__ = ["PATHS", "benchmark_report"]

PATHS = ("fp32", "channels_last", "bf16", "bf16_channels_last", "torchscript", "onnx")
EMULATED_SLICES = 4  # slices timed for bf16 paths on a CPU without native bf16 (about 1 s per slice there)
BATCH_SIZES = (2, 4, 8, 16)  # slices per network call compared on the default path
PRECISION_DATALIST = "data/simulated_quick/datalist.json"  # the paper subjects (never trained on by the shipped model)


def _training_throughput(
    config_files: list[str], overrides: dict[str, Any], batch: int, size: int, steps: int
) -> float:
    """Slices per second of training steps of the config's network on the CPU (see `training_slices_per_second`)."""
    net, num_slices, extra = build_network(config_files, overrides)
    return training_slices_per_second(net, num_slices + extra, "cpu", batch, size, steps)


def _simulator_throughput(preset: str, subjects: int) -> float:
    from ..simulation import SimulationConfig, simulate_dataset

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        simulate_dataset(tmp, SimulationConfig(preset=preset, n_subjects=subjects, seed=7), progress=False)
        return subjects / ((time.perf_counter() - start) / 60.0)


def benchmark_report(
    command: str,
    data_root: str | Path = "data/benchmark",
    quick: bool = False,
    skip: Sequence[str] = (),
) -> str:
    """Measure everything side by side and return the report (markdown); `command` is printed in it."""
    data_root = str(data_root)
    started = time.perf_counter()
    default = default_inference_path()
    emulated_bf16 = not default.startswith("bf16")  # no native bf16: time those paths on a few slices only
    shipped = ["configs/inference.json"]
    paper = ["configs/train.json", "configs/profiles/paper.json"]
    volume, _ = benchmark_volume(data_root)
    depth = volume.shape[-1]
    repeat = 2 if quick else 3
    weights_path, weights_sha = shipped_weights()
    print(f"machine: {machine_description()}; volume {volume.shape}; weights {weights_path} {weights_sha}", flush=True)
    mm, _ = run_task_in_subprocess("matmul", {})
    net, num_slices, extra = build_network(shipped)
    flops = conv_flops_per_slice(net, num_slices + extra, volume.shape[:2])
    net_paper, ns_paper, ex_paper = build_network(paper)
    flops_paper = conv_flops_per_slice(net_paper, ns_paper + ex_paper, volume.shape[:2])

    rows = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    for path in PATHS:
        short = emulated_bf16 and path.startswith("bf16")
        task = {
            "config_files": shipped,
            "path": path,
            "repeat": 1 if short else repeat,
            "workdir": str(workdir),
            "data_root": data_root,
            **({"slices": EMULATED_SLICES} if short else {}),
        }
        try:
            out, peak = run_task_in_subprocess("inference", task)
        except RuntimeError as exc:
            rows.append({"path": path, "note": str(exc)[:120]})
            continue
        rate = flops / (out["ms_per_slice"] / 1000) / 1e9
        ref = mm["bf16_gflops"] if path.startswith("bf16") else mm["fp32_gflops"]
        rows.append(
            {
                "path": path + (" (default)" if path == default else ""),
                "ms/slice": out["ms_per_slice"],
                **({} if short else {"s/volume": out["seconds_per_volume"]}),
                "GFLOP/s": rate,
                "% of matmul": 100 * rate / ref,
                "peak RSS MB": peak,
                "note": f"emulated bf16, timed on {EMULATED_SLICES} slices" if short else "",
            }
        )
    base = next(r for r in rows if r["path"] == "fp32")["ms/slice"]
    for r in rows:
        if "ms/slice" in r:
            r["speed-up vs fp32 eager"] = base / r["ms/slice"]
    default_ms = next(r["ms/slice"] for r in rows if r["path"].startswith(default))
    default_rate = mm["bf16_gflops"] if default.startswith("bf16") else mm["fp32_gflops"]
    batch_rows = []
    for batch in () if "batches" in skip else BATCH_SIZES:
        task = {"config_files": shipped, "path": default, "repeat": repeat, "workdir": str(workdir)}
        out, _ = run_task_in_subprocess("inference", {**task, "data_root": data_root, "batch_slices": batch})
        rate = flops / (out["ms_per_slice"] / 1000) / 1e9
        batch_rows.append(
            {"slices per call": batch, "ms/slice": out["ms_per_slice"], "% of matmul": 100 * rate / default_rate}
        )
    profile = {}
    if "profile" not in skip:
        profile, _ = run_task_in_subprocess(
            "profile", {"config_files": shipped, "precision": "auto", "batch": BATCH_SIZES[1]}
        )
        profile["conv_share_of_matmul"] = 100 * profile["conv_gflops"] / default_rate
    study = {}
    if "study" not in skip:
        study, study_peak = run_task_in_subprocess("study", {"workdir": str(workdir / "study"), "data_root": data_root})
        study["peak RSS MB"] = study_peak

    baseline_rows = []
    if "baselines" not in skip:
        for name, slices, params in (
            ("gaussian", depth, {}),
            ("nlm", 8, {"h": 0.12, "patch_size": 5, "patch_distance": 6}),
            ("bm3d", 4, {}),
        ):
            try:
                out, peak = run_task_in_subprocess(
                    "classical", {"method": name, "slices": slices, "params": params, "data_root": data_root}
                )
                baseline_rows.append({"method": name, "ms/slice": out["ms_per_slice"], "peak RSS MB": peak})
            except RuntimeError as exc:
                baseline_rows.append({"method": name, "note": str(exc)[:120]})
        for variant, overrides in (("AC-Net (fp32)", "fp32"), ("AC-Net (bf16, channels-last)", "bf16_channels_last")):
            slices = EMULATED_SLICES if emulated_bf16 and overrides.startswith("bf16") else 16
            out, peak = run_task_in_subprocess(
                "inference",
                {
                    "config_files": ["configs/train.json", "configs/variants/acnet.json"],
                    "path": overrides,
                    "slices": slices,
                    "repeat": 1,
                    "workdir": str(workdir),
                    "data_root": data_root,
                },
            )
            baseline_rows.append(
                {
                    "method": variant,
                    "ms/slice": out["ms_per_slice"],
                    "peak RSS MB": peak,
                    "note": f"emulated bf16, {slices} slices" if slices == EMULATED_SLICES else "",
                }
            )
        for r in baseline_rows:
            if "ms/slice" in r:
                r["default network path is x faster"] = r["ms/slice"] / default_ms

    memory_rows, scaling_rows = [], []
    if "memory" not in skip:
        for slices in (89, 400):
            out, peak = run_task_in_subprocess(
                "inference",
                {
                    "config_files": shipped,
                    "path": default,
                    "slices": slices,
                    "repeat": 1,
                    "workdir": str(workdir),
                    "data_root": data_root,
                },
            )
            memory_rows.append(
                {"volume": f"256 x 256 x {slices}", "peak RSS MB": peak, "s/volume": out["seconds_per_volume"]}
            )
    if "scaling" not in skip:
        for slices in (89, 178, 356):
            out, _ = run_task_in_subprocess(
                "inference",
                {
                    "config_files": shipped,
                    "path": default,
                    "slices": slices,
                    "repeat": repeat,
                    "workdir": str(workdir),
                    "data_root": data_root,
                },
            )
            scaling_rows.append(
                {"slices": slices, "s/volume": out["seconds_per_volume"], "ms/slice": out["ms_per_slice"]}
            )
        first = scaling_rows[0]["ms/slice"]
        for r in scaling_rows:
            r["ms/slice relative to 89"] = r["ms/slice"] / first

    training_rows = []
    if "training" not in skip:
        training_rows.append(
            {
                "profile": "cpu-default (base 16, 128 x 128, batch 16)",
                "slices/s": _training_throughput(["configs/train.json"], {}, 16, 128, 5 if quick else 10),
            }
        )
        training_rows.append(
            {"profile": "paper (base 32, 256 x 256, batch 16)", "slices/s": _training_throughput(paper, {}, 16, 256, 3)}
        )
    simulator_rows = []
    if "simulator" not in skip:
        for preset, n in (("quick", 2), ("paper", 1 if quick else 2)):
            simulator_rows.append(
                {"preset": preset, "subjects/min": _simulator_throughput(preset, n), "subjects timed": n}
            )
    precision = {}
    if "precision" not in skip and Path(PRECISION_DATALIST).is_file():
        from .shipped_model import precision_psnr

        subjects = 2 if quick or emulated_bf16 else None  # emulated bf16 takes about 1 s per slice
        precision = precision_psnr(weights_path, PRECISION_DATALIST, (20.0, 200.0), subjects)
    load_rows = []
    if "load" not in skip:
        load_study = Path("data/simulated_quick/sub-001/sub-001_pet_drf200.nii.gz")
        if load_study.is_file():
            try:
                out, peak = run_task_in_subprocess(
                    "load", {"workdir": str(workdir / "load"), "study": str(load_study), "studies": 50}
                )
            except RuntimeError as exc:  # the rest of the measurements are still reported
                load_rows.append({"studies done": f"not measured: {str(exc)[:120]}", "resident MB": ""})
            else:
                for n, rss in sorted(out["rss_mb_after"].items(), key=lambda kv: int(kv[0])):
                    load_rows.append({"studies done": int(n), "resident MB": rss})
                load_rows.append(
                    {
                        "studies done": f"peak over the run ({out['ok']} denoised, {out['seconds']:.0f} s)",
                        "resident MB": peak,
                    }
                )

    gpu_rows = []
    if torch.cuda.is_available():
        from .measure import device_volume_timings

        gpu_rows = device_volume_timings(
            net, volume / float(np.percentile(volume, 99.5)), num_slices, "cuda", extra_channels=extra
        )
    results = {
        "minutes": (time.perf_counter() - started) / 60,
        "machine": machine_description(),
        "volume_shape": list(volume.shape),
        "default_path": default,
        "weights": {"path": weights_path, "sha256": weights_sha},
        "batch_slices": BATCH_SIZES[1],
        "batches": batch_rows,
        "profile": profile,
        "study": study,
        "emulated_bf16": emulated_bf16,
        "matmul": mm,
        "gflop_per_slice": {"shipped": flops / 1e9, "paper": flops_paper / 1e9},
        "paths": rows,
        "baselines": baseline_rows,
        "memory": memory_rows,
        "scaling": scaling_rows,
        "training": training_rows,
        "simulator": simulator_rows,
        "load": load_rows,
        "precision": precision,
        "gpu_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "gpu_rows": gpu_rows,
    }
    report = performance_markdown(results, command)
    print(report)
    return report
