"""Measurement primitives for scripts/benchmark.py and the report's Table II.

Timings are medians of repeated runs after a warm-up. Peak memory is measured per task in a fresh
subprocess (`python -m bundle.benchmarking <task> <json>`), read from the child's resource usage, so one
path's allocations never inflate another's.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

__all__ = [
    "median_seconds", "matmul_gflops", "conv_flops_per_slice", "machine_description", "benchmark_volume",
    "build_network", "inference_runner", "PATH_TOLERANCE", "peak_rss_mb", "run_task_in_subprocess", "table_ii_timings",
    "device_volume_timings",
]


def median_seconds(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def matmul_gflops(dtype: torch.dtype = torch.float32, n: int = 2048, repeat: int = 5) -> float:
    """Measured dense matrix-multiply rate (2 n^3 FLOP per product)."""
    a = torch.rand(n, n, dtype=torch.float32).to(dtype)
    b = torch.rand(n, n, dtype=torch.float32).to(dtype)
    seconds = median_seconds(lambda: torch.mm(a, b), repeat=repeat, warmup=2)
    return 2 * n**3 / seconds / 1e9


def conv_flops_per_slice(net: torch.nn.Module, in_channels: int, size: tuple[int, int] = (256, 256)) -> float:
    """FLOPs (2 x multiply-accumulates) of the convolutions for one slice, counted with forward hooks."""
    total = [0.0]

    def hook(module: torch.nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        k = module.kernel_size[0] * module.kernel_size[1] * (module.in_channels // module.groups)
        total[0] += 2.0 * k * out.numel()

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net.eval()(torch.rand(1, in_channels, *size))
    for h in handles:
        h.remove()
    return total[0]


def machine_description() -> str:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), {gpu}"


def benchmark_volume(root: str | Path = "data/benchmark", preset: str = "paper") -> tuple[np.ndarray, tuple[float, ...]]:
    """The low-dose volume of one simulated subject of `preset` (simulated once, then reused)."""
    import nibabel as nib

    from .simulation import SimulationConfig, simulate_dataset

    folder = Path(root) / preset
    datalist = folder / "datalist.json"
    if not datalist.is_file():
        simulate_dataset(folder, SimulationConfig(preset=preset, n_subjects=1, seed=123), progress=False)
    item = json.loads(datalist.read_text())["training"][0]
    img = nib.load(folder / item["image"])
    return np.asarray(img.get_fdata(dtype=np.float32)), tuple(float(z) for z in img.header.get_zooms()[:3])


def build_network(config_files: Sequence[str], overrides: dict[str, Any] | None = None) -> tuple[torch.nn.Module, int, int]:
    """The config's network (random weights: timing does not depend on them), its stack depth and extra channels."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(list(config_files))
    parser.update(dict(overrides or {}))
    net = parser.get_parsed_content("network_def").eval()
    extra = len(parser.get_parsed_content("extra_keys")) if "extra_keys" in parser else 0
    return net, int(parser.get_parsed_content("num_slices")), extra


# max |path - fp32 eager| / output range, per inference path (tests/test_inference_paths.py)
PATH_TOLERANCE = {"fp32": 0.0, "channels_last": 1e-5, "torchscript": 1e-5, "onnx": 1e-5, "bf16": 3e-2,
                  "bf16_channels_last": 3e-2}


def inference_runner(path: str, net: torch.nn.Module, num_slices: int, in_channels: int, workdir: Path,
                     batch_slices: int = 16) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable denoising a (1, 1 + E, X, Y, Z) volume along one inference path.

    Paths: fp32 (eager), channels_last, bf16 (autocast), bf16_channels_last, torchscript, onnx. Each matches fp32
    eager within PATH_TOLERANCE (max |difference| relative to the output's range).
    """
    from .inferers import StreamingSliceInferer

    precision = "bf16" if path.startswith("bf16") else "fp32"
    channels_last = path in ("channels_last", "bf16_channels_last")
    model: Any = net.eval()
    if channels_last:
        model = net.to(memory_format=torch.channels_last)
    if path == "torchscript":
        from .export import export_torchscript

        target = workdir / "bench_model.ts"
        target.unlink(missing_ok=True)
        export_torchscript(net, target)
        model = torch.jit.load(str(target)).eval()
    elif path == "onnx":
        from .deploy.backends import OnnxModel
        from .export import export_onnx

        target = workdir / "bench_model.onnx"
        target.unlink(missing_ok=True)
        export_onnx(net, target, in_channels)
        model = OnnxModel(target, threads=torch.get_num_threads())
    inferer = StreamingSliceInferer(num_slices=num_slices, batch_slices=batch_slices, precision=precision,
                                    channels_last=channels_last)

    def run(volume: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return inferer(volume, model)

    return run


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MB."""
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_task_in_subprocess(task: str, args: dict[str, Any], timeout: int = 1800) -> tuple[dict[str, Any], float]:
    """Run `task` in a fresh interpreter; returns its JSON result and its peak resident memory in MB."""
    cmd = [sys.executable, "-m", "bundle.benchmarking", task, json.dumps(args)]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else str(proc.returncode)
        raise RuntimeError(f"benchmark task {task} failed: {tail}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result, float(result.pop("peak_rss_mb"))


# -- tasks run in subprocesses ----------------------------------------------------------------------------

def _task_inference(args: dict[str, Any]) -> dict[str, Any]:
    torch.set_num_threads(args.get("threads", torch.get_num_threads()))
    net, num_slices, extra = build_network(args["config_files"], args.get("overrides"))
    volume, _ = benchmark_volume(args.get("data_root", "data/benchmark"))
    depth = int(args.get("slices", volume.shape[-1]))
    reps = int(np.ceil(depth / volume.shape[-1]))
    vol = np.concatenate([volume] * reps, axis=-1)[..., :depth]
    x = torch.from_numpy(np.ascontiguousarray(vol))[None, None].repeat(1, 1 + extra, 1, 1, 1)
    workdir = Path(args.get("workdir", "."))
    run = inference_runner(args["path"], net, num_slices, num_slices + extra, workdir, args.get("batch_slices", 16))
    seconds = median_seconds(lambda: run(x), repeat=int(args.get("repeat", 3)), warmup=1)
    return {"seconds_per_volume": seconds, "slices": depth, "ms_per_slice": 1000 * seconds / depth}


def _task_classical(args: dict[str, Any]) -> dict[str, Any]:
    from .baselines import available_methods

    torch.set_num_threads(args.get("threads", torch.get_num_threads()))
    volume, voxel = benchmark_volume(args.get("data_root", "data/benchmark"))
    method = available_methods()[args["method"]]()
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
    return {"fp32_gflops": matmul_gflops(torch.float32), "fp32_n": 2048,
            "bf16_gflops": matmul_gflops(torch.bfloat16, n=bf16_n, repeat=5 if native_bf16 else 3), "bf16_n": bf16_n}


def current_rss_mb() -> float:
    """This process's resident memory now (VmRSS) in MB."""
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


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

    wf = ConfigWorkflow(config_file="configs/inference.json", workflow_type=None, logging_file=False,
                        input_dir=str(inputs), output_dir=str(root / "out"), progress=False, **args.get("overrides", {}))
    wf.initialize()
    runner = wf.parser.get_parsed_content("runner")
    runner.on_study = on_study
    start = time.perf_counter()
    runner.run()
    return {"rss_mb_after": marks, "seconds": time.perf_counter() - start,
            "ok": sum(r.status == "ok" for r in runner.results)}


TASKS = {"inference": _task_inference, "classical": _task_classical, "matmul": _task_matmul, "load": _task_load}


def default_inference_path() -> str:
    """The path inference.json runs on this CPU: precision auto (bf16 only with native bf16) + channels-last."""
    from .inferers import resolve_precision

    return "bf16_channels_last" if resolve_precision("auto", "cpu") is not None else "channels_last"


def _tuned_or_default_params(baselines_dir: Path, name: str) -> dict[str, Any]:
    """A baseline's parameters as tuned for the first test subject of the study (timing depends on them), else none:
    the filter's own defaults apply."""
    from .paper.baselines_run import tuned_records

    records = tuned_records(baselines_dir, name)
    return dict(next(iter(records.values()))["params"]) if records else {}


def table_ii_timings(config_files: Sequence[str], overrides: dict[str, Any], acnet_files: Sequence[str] | None,
                     acnet_overrides: dict[str, Any], baselines: Sequence[str], workdir: Path) -> dict[str, Any]:
    """The report's Table II: ms per 256 x 256 slice for every method, measured side by side."""
    clean = {k: v for k, v in overrides.items() if k in ("base_features", "num_poolings", "convs_per_stage", "num_slices")}
    result: dict[str, float] = {}
    for name in baselines:
        slices = {"gaussian": 89, "nlm": 8, "bm3d": 4}.get(name, 4)
        params = _tuned_or_default_params(workdir / "baselines", name)
        out, _ = run_task_in_subprocess("classical", {"method": name, "slices": slices, "params": params})
        result[{"gaussian": "Gaussian", "nlm": "NLM", "bm3d": "BM3D"}[name]] = out["ms_per_slice"]
    default = default_inference_path()
    if acnet_files:
        out, _ = run_task_in_subprocess("inference", {"config_files": list(acnet_files), "overrides": dict(acnet_overrides),
                                                      "path": default, "slices": 16, "repeat": 2,
                                                      "workdir": str(workdir)})
        result[f"AC-Net ({default})"] = out["ms_per_slice"]
    for path in dict.fromkeys(("fp32", default)):
        out, _ = run_task_in_subprocess("inference", {"config_files": list(config_files), "overrides": clean, "path": path,
                                                      "workdir": str(workdir)})
        result[f"proposed ({path})"] = out["ms_per_slice"]
    return {"cpu_ms_per_slice": result, "machine": machine_description(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available in this environment"}


def device_volume_timings(net: torch.nn.Module, volume: np.ndarray, num_slices: int, device: torch.device | str,
                          precisions: Sequence[str] = ("fp32", "bf16", "fp16"), repeat: int = 10) -> list[dict[str, Any]]:
    """Whole-volume inference on `device` with every slice in one batch: ms per slice with the volume already on
    the device, and the volume's time including the host-to-device and device-to-host transfers."""
    from .inferers import StreamingSliceInferer

    device = torch.device(device)
    net = net.eval().to(device)
    host = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None, None]
    on_device = host.to(device)
    depth = volume.shape[-1]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    rows = []
    for precision in precisions:
        if precision == "fp16" and device.type != "cuda":
            continue  # no fp16 autocast worth timing on CPU
        inferer = StreamingSliceInferer(num_slices, batch_slices=depth, precision=precision)

        def network_only() -> None:
            inferer(on_device, net)
            sync()

        def with_transfers() -> None:
            inferer(host.to(device), net).cpu()
            sync()

        rows.append({"precision": precision, "ms/slice": 1000 * median_seconds(network_only, repeat, 2) / depth,
                     "ms/volume incl. transfers": 1000 * median_seconds(with_transfers, repeat, 2)})
    return rows


if __name__ == "__main__":
    task, raw = sys.argv[1], sys.argv[2]
    output = TASKS[task](json.loads(raw))
    output["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(output))
