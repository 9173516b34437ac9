"""The benchmark report: inference paths, baselines, efficiency, memory, scaling, training and simulator throughput,
measured side by side in one run, with the ratios and the performance targets, as the markdown of
docs/performance.md."""

from __future__ import annotations

import json
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
    training_slices_per_second,
)
from .performance_md import performance_markdown
from .tasks import run_task_in_subprocess

__all__ = ["PATHS", "benchmark_report"]

PATHS = ("fp32", "channels_last", "bf16", "bf16_channels_last", "torchscript", "onnx")
EMULATED_SLICES = 4  # slices timed for bf16 paths on a CPU without native bf16 (about 1 s per slice there)


def _precision_check(loocv_dir: Path) -> dict[str, Any]:
    """Mean PSNR against full dose of every fold's test subject with fp32 and bf16 inference."""
    import torch
    from monai.bundle import ConfigParser

    from ..baselines.tuning import load_cases
    from ..data import load_datalist
    from ..inferers import StreamingSliceInferer
    from ..metrics import masked_psnr
    from ..transforms.intensity import percentile_scale
    from ..weights import load_network_weights

    results = sorted(loocv_dir.glob("fold*/result.json"))
    if not results:
        return {"error": f"no finished folds in {loocv_dir}"}
    deltas, fp32s, bf16s = [], [], []
    for result in results:
        fold_dir = result.parent
        config = json.loads((fold_dir / "config.json").read_text())
        parser = ConfigParser(config)
        net = parser.get_parsed_content("network_def")
        ckpt = (
            fold_dir / "checkpoints" / ("best.pt" if (fold_dir / "checkpoints" / "best.pt").is_file() else "model.pt")
        )
        load_network_weights(net, ckpt).eval()
        record = json.loads(result.read_text())
        items = [
            i
            for i in load_datalist(parser.get_parsed_content("datalist_file"))
            if i["subject"] == record["test_subject"]
        ]
        case = load_cases(items)[0]
        scale = percentile_scale(case.low)
        x = torch.from_numpy(case.low / scale)[None, None]
        psnr = {}
        for precision in ("fp32", "bf16"):
            inferer = StreamingSliceInferer(
                int(parser.get_parsed_content("num_slices")), 16, precision, precision == "bf16"
            )
            pred = inferer(
                x, net.to(memory_format=torch.channels_last if precision == "bf16" else torch.contiguous_format)
            )
            psnr[precision] = masked_psnr(pred[0, 0].numpy() * scale, case.full, case.mask)
        fp32s.append(psnr["fp32"])
        bf16s.append(psnr["bf16"])
        deltas.append(psnr["bf16"] - psnr["fp32"])
    return {
        "folds": len(results),
        "mean_psnr_fp32": float(np.mean(fp32s)),
        "mean_psnr_bf16": float(np.mean(bf16s)),
        "mean_delta_db": float(np.mean(deltas)),
        "max_abs_delta_db": float(np.max(np.abs(deltas))),
    }


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
    loocv_dir: str | Path = "runs/loocv-cpu-default",
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
    print(f"machine: {machine_description()}; volume {volume.shape}", flush=True)
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
    precision = {} if "precision" in skip else _precision_check(Path(loocv_dir))
    load_rows = []
    if "load" not in skip:
        study = Path("data/simulated_quick/sub-001/sub-001_pet_drf200.nii.gz")
        if study.is_file():
            out, peak = run_task_in_subprocess(
                "load", {"workdir": str(workdir / "load"), "study": str(study), "studies": 50}
            )
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

        gpu_rows = device_volume_timings(net, volume / float(np.percentile(volume, 99.5)), num_slices, "cuda")
    results = {
        "minutes": (time.perf_counter() - started) / 60,
        "machine": machine_description(),
        "volume_shape": list(volume.shape),
        "default_path": default,
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
