"""Benchmark tasks, each run in a fresh interpreter (`python -m bundle.benchmark.tasks <task> <json>`) so that its
peak resident memory is its own: one path's allocations never inflate another's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..deploy.inference_paths import default_inference_path, inference_runner
from ..networks.fusion import fold_batch_norm
from .measure import benchmark_volume, build_network, current_rss_mb, matmul_gflops, median_seconds, peak_rss_mb

__all__ = ["TASKS", "run_task_in_subprocess"]


def run_task_in_subprocess(task: str, args: dict[str, Any], timeout: int = 1800) -> tuple[dict[str, Any], float]:
    """Run `task` in a fresh interpreter; returns its JSON result and its peak resident memory in MB."""
    cmd = [sys.executable, "-m", "bundle.benchmark.tasks", task, json.dumps(args)]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else str(proc.returncode)
        raise RuntimeError(f"benchmark task {task} failed: {tail}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result, float(result.pop("peak_rss_mb"))


def _task_inference(args: dict[str, Any]) -> dict[str, Any]:
    torch.set_num_threads(args.get("threads", torch.get_num_threads()))
    net, num_slices, extra = build_network(args["config_files"], args.get("overrides"))
    volume, _ = benchmark_volume(args.get("data_root", "data/benchmark"))
    depth = int(args.get("slices", volume.shape[-1]))
    reps = int(np.ceil(depth / volume.shape[-1]))
    vol = np.concatenate([volume] * reps, axis=-1)[..., :depth]
    x = torch.from_numpy(np.ascontiguousarray(vol))[None, None]
    x = torch.cat([x] + [torch.full_like(x, 0.5)] * extra, dim=1)  # constant extra channels, as a dose code
    workdir = Path(args.get("workdir", "."))
    run = inference_runner(args["path"], net, num_slices, num_slices + extra, workdir, args.get("batch_slices", 4))
    seconds = median_seconds(lambda: run(x), repeat=int(args.get("repeat", 3)), warmup=1)
    return {"seconds_per_volume": seconds, "slices": depth, "ms_per_slice": 1000 * seconds / depth}


def _task_classical(args: dict[str, Any]) -> dict[str, Any]:
    from ..baselines import make_baseline

    torch.set_num_threads(args.get("threads", torch.get_num_threads()))
    volume, voxel = benchmark_volume(args.get("data_root", "data/benchmark"))
    method = make_baseline(args["method"])
    params = dict(args.get("params", {}))
    n = int(args.get("slices", 4))
    mid = volume.shape[-1] // 2
    slices = np.arange(mid - n // 2, mid - n // 2 + n)
    if args["method"] == "gaussian":
        seconds = median_seconds(lambda: method(volume, voxel, **params), repeat=3)
        return {"ms_per_slice": 1000 * seconds / volume.shape[-1]}
    seconds = median_seconds(lambda: method(volume, voxel, slices=slices, **params), repeat=1, warmup=1)
    return {"ms_per_slice": 1000 * seconds / n}


def _task_matmul(args: dict[str, Any]) -> dict[str, Any]:
    torch.set_num_threads(args.get("threads", torch.get_num_threads()))
    native_bf16 = default_inference_path().startswith("bf16")  # emulated bf16 is ~1 GFLOP/s: a smaller product will do
    bf16_n = 2048 if native_bf16 else 512
    return {
        "fp32_gflops": matmul_gflops(torch.float32),
        "fp32_n": 2048,
        "bf16_gflops": matmul_gflops(torch.bfloat16, n=bf16_n, repeat=5 if native_bf16 else 3),
        "bf16_n": bf16_n,
    }


def _task_load(args: dict[str, Any]) -> dict[str, Any]:
    """Batch inference over `studies` copies of a study with the inference config; memory after 5, 25, 50."""
    import nibabel as nib
    from monai.bundle import ConfigWorkflow

    root = Path(args["workdir"])
    inputs = root / "studies"
    inputs.mkdir(parents=True, exist_ok=True)
    src = nib.load(args["study"])
    data = np.asarray(src.get_fdata(dtype=np.float32))
    rng = np.random.default_rng(0)
    for i in range(int(args["studies"])):
        nib.save(nib.Nifti1Image(data * rng.uniform(0.5, 2.0), src.affine), inputs / f"study{i:03d}.nii.gz")
    marks: dict[str, float] = {}
    checkpoints = set(args.get("marks", [5, 25, 50]))
    done = [0]

    def on_study(_result: Any) -> None:
        done[0] += 1
        if done[0] in checkpoints:
            marks[str(done[0])] = current_rss_mb()

    wf = ConfigWorkflow(
        config_file="configs/inference.json",
        workflow_type=None,
        logging_file=False,
        input_dir=str(inputs),
        output_dir=str(root / "out"),
        progress=False,
        **{"drf": 200.0, **args.get("overrides", {})},  # the studies' dose (the shipped model is dose-conditioned)
    )
    wf.initialize()
    runner = wf.parser.get_parsed_content("evaluator")
    runner.on_study = on_study
    start = time.perf_counter()
    runner.run()
    return {
        "rss_mb_after": marks,
        "seconds": time.perf_counter() - start,
        "ok": sum(r.status == "ok" for r in runner.results),
    }


def _task_study(args: dict[str, Any]) -> dict[str, Any]:
    from .shipped_model import study_latency

    volume, _ = benchmark_volume(args.get("data_root", "data/benchmark"))
    return study_latency(volume, args["workdir"], float(args.get("drf", 200.0)))


def _task_profile(args: dict[str, Any]) -> dict[str, Any]:
    from .measure import conv_flops_per_slice
    from .shipped_model import operator_profile

    net, num_slices, extra = build_network(args["config_files"])
    net = fold_batch_norm(net)
    flops = conv_flops_per_slice(net, num_slices + extra) / 1e9
    return operator_profile(net, num_slices + extra, args["precision"], True, int(args["batch"]), flops)


TASKS = {
    "inference": _task_inference,
    "classical": _task_classical,
    "matmul": _task_matmul,
    "load": _task_load,
    "study": _task_study,
    "profile": _task_profile,
}


if __name__ == "__main__":
    task, raw = sys.argv[1], sys.argv[2]
    output = TASKS[task](json.loads(raw))
    output["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(output))
