"""`scripts/benchmark.py`: one run that measures inference paths, baselines, efficiency, memory, scaling,
training and simulator throughput side by side, prints the table and writes docs/performance.md."""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import cli_errors
from .common import OneLineArgumentParser, setup_logging

PATHS = ("fp32", "channels_last", "bf16", "bf16_channels_last", "torchscript", "onnx")
EMULATED_SLICES = 4  # slices timed for bf16 paths on a CPU without native bf16 (about 1 s per slice there)


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="benchmark.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/performance.md")
    p.add_argument("--loocv-dir", default="runs/loocv-cpu-default", help="cross-validation to check bf16 PSNR on")
    p.add_argument("--data-root", default="data/benchmark")
    p.add_argument("--quick", action="store_true", help="fewer repeats and sizes (smoke test)")
    p.add_argument("--skip", nargs="*", default=[], help="sections to skip: baselines memory scaling training simulator precision load")
    return p


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _precision_check(loocv_dir: Path) -> dict[str, Any]:
    """Mean PSNR against full dose of every fold's test subject with fp32 and bf16 inference."""
    import torch
    from monai.bundle import ConfigParser

    from ..baselines.tuning import load_cases
    from ..data import load_datalist
    from ..engine.checkpoint import load_network_weights
    from ..inferers import StreamingSliceInferer
    from ..metrics import masked_psnr
    from ..transforms.intensity import percentile_scale

    results = sorted(loocv_dir.glob("fold*/result.json"))
    if not results:
        return {"error": f"no finished folds in {loocv_dir}"}
    deltas, fp32s, bf16s = [], [], []
    for result in results:
        fold_dir = result.parent
        config = json.loads((fold_dir / "config.json").read_text())
        parser = ConfigParser(config)
        net = parser.get_parsed_content("network_def")
        ckpt = fold_dir / "checkpoints" / ("best.pt" if (fold_dir / "checkpoints" / "best.pt").is_file() else "model.pt")
        load_network_weights(net, ckpt).eval()
        record = json.loads(result.read_text())
        items = [i for i in load_datalist(parser.get_parsed_content("datalist_file")) if i["subject"] == record["test_subject"]]
        case = load_cases(items)[0]
        scale = percentile_scale(case.low)
        x = torch.from_numpy(case.low / scale)[None, None]
        psnr = {}
        for precision in ("fp32", "bf16"):
            inferer = StreamingSliceInferer(int(parser.get_parsed_content("num_slices")), 16, precision, precision == "bf16")
            pred = inferer(x, net.to(memory_format=torch.channels_last if precision == "bf16" else torch.contiguous_format))
            psnr[precision] = masked_psnr(pred[0, 0].numpy() * scale, case.full, case.mask)
        fp32s.append(psnr["fp32"])
        bf16s.append(psnr["bf16"])
        deltas.append(psnr["bf16"] - psnr["fp32"])
    return {"folds": len(results), "mean_psnr_fp32": float(np.mean(fp32s)), "mean_psnr_bf16": float(np.mean(bf16s)),
            "mean_delta_db": float(np.mean(deltas)), "max_abs_delta_db": float(np.max(np.abs(deltas)))}


def _training_throughput(config_files: list[str], overrides: dict[str, Any], batch: int, size: int, steps: int) -> float:
    """Slices per second of training steps (forward, L1 loss, backward, RMSprop) with the profile's precision."""
    import torch

    from ..benchmarking import build_network, median_seconds
    from ..inferers import PrecisionInferer

    net, num_slices, extra = build_network(config_files, overrides)
    net = net.train().to(memory_format=torch.channels_last)
    opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9)
    inferer = PrecisionInferer("auto", channels_last=True)
    x = torch.rand(batch, num_slices + extra, size, size)
    y = torch.rand(batch, 1, size, size)

    def step() -> None:
        loss = torch.nn.functional.l1_loss(inferer(x, net), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return batch / median_seconds(step, repeat=steps, warmup=2)


def _simulator_throughput(preset: str, subjects: int) -> float:
    from ..simulation import SimulationConfig, simulate_dataset

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        simulate_dataset(tmp, SimulationConfig(preset=preset, n_subjects=subjects, seed=7), progress=False)
        return subjects / ((time.perf_counter() - start) / 60.0)


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("**met**" if ok else "**missed**")


def _targets(rows: list[dict], baseline_rows: list[dict], memory_rows: list[dict], scaling_rows: list[dict],
             precision: dict[str, Any]) -> list[dict[str, str]]:
    """The issue's CPU targets, each with its measured value and whether it is met."""
    by_path = {r["path"].split(" ")[0]: r for r in rows if "ms/slice" in r}
    out = []
    fp32_paths = {p: r["% of matmul"] for p, r in by_path.items() if not p.startswith("bf16")}
    fastest = max(fp32_paths, key=fp32_paths.get) if fp32_paths else None
    eager = f"; eager {fp32_paths['fp32']:.0f} %" if "fp32" in fp32_paths and fastest != "fp32" else ""
    out.append({"target": "an fp32 inference path >= 60 % of the fp32 matmul rate",
                "measured": f"{fastest}: {fp32_paths[fastest]:.0f} %{eager}" if fastest else "-",
                "verdict": _verdict(None if fastest is None else fp32_paths[fastest] >= 60)})
    reduced = [(p, r["speed-up vs fp32 eager"]) for p, r in by_path.items() if p.startswith("bf16")]
    best = max(reduced, key=lambda t: t[1]) if reduced else None
    out.append({"target": "a reduced-precision path >= 1.5 x faster than fp32 eager",
                "measured": f"{best[0]}: {best[1]:.2f} x" if best else "-", "verdict": _verdict(None if best is None else best[1] >= 1.5)})
    delta = precision.get("max_abs_delta_db")
    out.append({"target": "bf16 changes the mean PSNR of the CV test subjects by < 0.05 dB",
                "measured": f"mean {precision['mean_delta_db']:+.4f} dB (max per subject {delta:.4f} dB)" if delta is not None else "-",
                "verdict": _verdict(None if delta is None else abs(precision["mean_delta_db"]) < 0.05)})
    bm3d = next((r for r in baseline_rows if r.get("method") == "bm3d" and "ms/slice" in r), None)
    out.append({"target": "default inference path >= 5 x faster per slice than BM3D",
                "measured": f"{bm3d['default network path is x faster']:.0f} x" if bm3d else "-",
                "verdict": _verdict(None if bm3d is None else bm3d["default network path is x faster"] >= 5)})
    for r, limit in zip(memory_rows, (2048, 3072)):
        out.append({"target": f"peak memory for {r['volume']} < {limit / 1024:.0f} GB", "measured": f"{r['peak RSS MB']:.0f} MB",
                    "verdict": _verdict(r["peak RSS MB"] < limit)})
    if scaling_rows:
        spread = max(abs(r["ms/slice relative to 89"] - 1.0) for r in scaling_rows)
        out.append({"target": "time grows linearly with slices (ms/slice within 15 % from 89 to 356 slices)",
                    "measured": f"max deviation {100 * spread:.0f} %", "verdict": _verdict(spread <= 0.15)})
    return out


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    import torch

    from ..benchmarking import (benchmark_volume, build_network, conv_flops_per_slice, default_inference_path,
                                machine_description, run_task_in_subprocess)
    from ..io import write_text

    started = time.perf_counter()
    default = default_inference_path()
    emulated_bf16 = not default.startswith("bf16")  # no native bf16: time those paths on a few slices only
    command = "python scripts/benchmark.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    shipped = ["configs/inference.json"]
    paper = ["configs/train.json", "configs/profiles/paper.json"]
    volume, _ = benchmark_volume(args.data_root)
    depth = volume.shape[-1]
    repeat = 2 if args.quick else 3
    print(f"machine: {machine_description()}; volume {volume.shape}", flush=True)
    mm, _ = run_task_in_subprocess("matmul", {})
    net, num_slices, extra = build_network(shipped)
    flops = conv_flops_per_slice(net, num_slices + extra, volume.shape[:2])
    net_paper, ns_paper, ex_paper = build_network(paper)
    flops_paper = conv_flops_per_slice(net_paper, ns_paper + ex_paper, volume.shape[:2])
    sections: list[str] = []

    rows = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    for path in PATHS:
        short = emulated_bf16 and path.startswith("bf16")
        task = {"config_files": shipped, "path": path, "repeat": 1 if short else repeat, "workdir": str(workdir),
                "data_root": args.data_root, **({"slices": EMULATED_SLICES} if short else {})}
        try:
            out, peak = run_task_in_subprocess("inference", task)
        except RuntimeError as exc:
            rows.append({"path": path, "note": str(exc)[:120]})
            continue
        rate = flops / (out["ms_per_slice"] / 1000) / 1e9
        ref = mm["bf16_gflops"] if path.startswith("bf16") else mm["fp32_gflops"]
        rows.append({"path": path + (" (default)" if path == default else ""), "ms/slice": out["ms_per_slice"],
                     **({} if short else {"s/volume": out["seconds_per_volume"]}), "GFLOP/s": rate,
                     "% of matmul": 100 * rate / ref, "peak RSS MB": peak,
                     "note": f"emulated bf16, timed on {EMULATED_SLICES} slices" if short else ""})
    base = next(r for r in rows if r["path"] == "fp32")["ms/slice"]
    for r in rows:
        if "ms/slice" in r:
            r["speed-up vs fp32 eager"] = base / r["ms/slice"]
    default_ms = next(r["ms/slice"] for r in rows if r["path"].startswith(default))

    baseline_rows = []
    if "baselines" not in args.skip:
        for name, slices, params in (("gaussian", depth, {}), ("nlm", 8, {"h": 0.12, "patch_size": 5, "patch_distance": 6}),
                                     ("bm3d", 4, {})):
            try:
                out, peak = run_task_in_subprocess("classical", {"method": name, "slices": slices, "params": params,
                                                                  "data_root": args.data_root})
                baseline_rows.append({"method": name, "ms/slice": out["ms_per_slice"], "peak RSS MB": peak})
            except RuntimeError as exc:
                baseline_rows.append({"method": name, "note": str(exc)[:120]})
        for variant, overrides in (("AC-Net (fp32)", "fp32"), ("AC-Net (bf16, channels-last)", "bf16_channels_last")):
            slices = EMULATED_SLICES if emulated_bf16 and overrides.startswith("bf16") else 16
            out, peak = run_task_in_subprocess("inference", {"config_files": ["configs/train.json", "configs/variants/acnet.json"],
                                                              "path": overrides, "slices": slices, "repeat": 1,
                                                              "workdir": str(workdir), "data_root": args.data_root})
            baseline_rows.append({"method": variant, "ms/slice": out["ms_per_slice"], "peak RSS MB": peak,
                                  "note": f"emulated bf16, {slices} slices" if slices == EMULATED_SLICES else ""})
        for r in baseline_rows:
            if "ms/slice" in r:
                r["default network path is x faster"] = r["ms/slice"] / default_ms

    memory_rows, scaling_rows = [], []
    if "memory" not in args.skip:
        for slices in (89, 400):
            out, peak = run_task_in_subprocess("inference", {"config_files": shipped, "path": default, "slices": slices,
                                                              "repeat": 1, "workdir": str(workdir), "data_root": args.data_root})
            memory_rows.append({"volume": f"256 x 256 x {slices}", "peak RSS MB": peak, "s/volume": out["seconds_per_volume"]})
    if "scaling" not in args.skip:
        for slices in (89, 178, 356):
            out, _ = run_task_in_subprocess("inference", {"config_files": shipped, "path": default, "slices": slices,
                                                           "repeat": repeat, "workdir": str(workdir), "data_root": args.data_root})
            scaling_rows.append({"slices": slices, "s/volume": out["seconds_per_volume"], "ms/slice": out["ms_per_slice"]})
        first = scaling_rows[0]["ms/slice"]
        for r in scaling_rows:
            r["ms/slice relative to 89"] = r["ms/slice"] / first

    training_rows = []
    if "training" not in args.skip:
        training_rows.append({"profile": "cpu-default (base 16, 128 x 128, batch 16)",
                              "slices/s": _training_throughput(["configs/train.json"], {}, 16, 128, 5 if args.quick else 10)})
        training_rows.append({"profile": "paper (base 32, 256 x 256, batch 16)",
                              "slices/s": _training_throughput(paper, {}, 16, 256, 3)})
    simulator_rows = []
    if "simulator" not in args.skip:
        for preset, n in (("quick", 2), ("paper", 1 if args.quick else 2)):
            simulator_rows.append({"preset": preset, "subjects/min": _simulator_throughput(preset, n), "subjects timed": n})
    precision = {} if "precision" in args.skip else _precision_check(Path(args.loocv_dir))
    load_rows = []
    if "load" not in args.skip:
        study = Path("data/simulated_quick/sub-001/sub-001_pet_drf200.nii.gz")
        if study.is_file():
            out, peak = run_task_in_subprocess("load", {"workdir": str(workdir / "load"), "study": str(study), "studies": 50})
            for n, rss in sorted(out["rss_mb_after"].items(), key=lambda kv: int(kv[0])):
                load_rows.append({"studies done": int(n), "resident MB": rss})
            load_rows.append({"studies done": f"peak over the run ({out['ok']} denoised, {out['seconds']:.0f} s)", "resident MB": peak})

    text = [
        "# Performance",
        "",
        f"Regenerate with `{command.strip()}` (about {((time.perf_counter() - started) / 60):.0f} min on this machine).",
        "",
        f"Machine: {machine_description()}. Volume: one simulated `paper`-preset subject, {volume.shape[0]} x "
        f"{volume.shape[1]} x {depth}.",
        "",
        f"Default inference path on this CPU: `{default}` ("
        + ("native bf16, so `precision: auto` runs bf16 autocast" if not emulated_bf16 else
           "no native bf16 (no AVX-512 BF16 or AMX), so `precision: auto` runs fp32; the bf16 rows are emulated bf16")
        + ").",
        "",
        f"Measured matrix-multiply rate: fp32 {mm['fp32_gflops']:.0f} GFLOP/s ({mm['fp32_n']} x {mm['fp32_n']}), "
        f"bf16 {mm['bf16_gflops']:.0f} GFLOP/s ({mm['bf16_n']} x {mm['bf16_n']}).",
        f"Network FLOPs per 256 x 256 slice (convolutions, 2 x MACs): shipped CPU model {flops / 1e9:.2f} GFLOP; "
        f"paper profile (base 32) {flops_paper / 1e9:.2f} GFLOP.",
        "",
        "## Inference paths (shipped model, whole volume, batches of 16 slices)",
        "",
        _table(rows, ["path", "ms/slice", "s/volume", "speed-up vs fp32 eager", "GFLOP/s", "% of matmul", "peak RSS MB", "note"]),
        "",
    ]
    text += ["## Targets on this machine", "", _table(_targets(rows, baseline_rows, memory_rows, scaling_rows, precision),
                                                     ["target", "measured", "verdict"]), "",
             "The GPU targets (<= 0.2 ms per slice, <= 50 ms per 89-slice volume, the paper profile's 9-fold "
             "cross-validation in <= 30 min on one H100) are measured by the same command on a GPU machine; "
             + ("see below." if torch.cuda.is_available() else "no GPU was available in this run, so they are not measured."), ""]
    if baseline_rows:
        text += ["## Baselines on the same volume", "", _table(baseline_rows, ["method", "ms/slice", "default network path is x faster",
                                                                             "peak RSS MB", "note"]), ""]
    if memory_rows:
        text += ["## Memory of the default path (streamed in batches of 16 slices)", "",
                 _table(memory_rows, ["volume", "peak RSS MB", "s/volume"]), ""]
    if scaling_rows:
        text += ["## Scaling with volume length (default path)", "",
                 _table(scaling_rows, ["slices", "s/volume", "ms/slice", "ms/slice relative to 89"]), ""]
    if training_rows:
        text += [f"## Training throughput (network steps, {'fp32' if emulated_bf16 else 'bf16 autocast'} "
                 "+ channels-last, as `precision: auto` trains on this CPU)", "",
                 _table(training_rows, ["profile", "slices/s"]), ""]
    if simulator_rows:
        text += ["## Simulator throughput", "", _table(simulator_rows, ["preset", "subjects/min", "subjects timed"]), ""]
    if load_rows:
        text += ["## Batch inference load", "", "50 studies of 128 x 128 x 80 (the `quick` preset) in one inference run "
                 "(`configs/inference.json`, shipped model, default path); resident memory after 5, 25 and 50 studies:", "",
                 _table(load_rows, ["studies done", "resident MB"]), ""]
    if precision:
        text += ["## Reduced precision on the cross-validation test subjects", "",
                 "Every fold's model denoises its own test subject in fp32 and in bf16 ("
                 + ("the default here" if not emulated_bf16 else "the default on CPUs with native bf16; "
                    "emulated here") + "); PSNR against "
                 "the full-dose reference inside the brain mask:", "", "```", json.dumps(precision, indent=2), "```", ""]
    if torch.cuda.is_available():
        from ..benchmarking import device_volume_timings

        gpu_rows = device_volume_timings(net, volume / float(np.percentile(volume, 99.5)), num_slices, "cuda")
        text += [f"## GPU: {torch.cuda.get_device_name(0)}", "",
                 f"All {depth} slices in one batch; targets <= 0.2 ms per slice in bf16 or fp16 and <= 50 ms per volume "
                 "including transfers.", "", _table(gpu_rows, ["precision", "ms/slice", "ms/volume incl. transfers"]), "",
                 "GPU training time: `time python scripts/crossval.py --profile paper` with `nvidia-smi dmon -s u` "
                 "sampling utilisation.", ""]
    else:
        text += ["GPU: none in this environment.", ""]
    report = "\n".join(text)
    print(report)
    write_text(report, args.out, overwrite=True)
    return 0
