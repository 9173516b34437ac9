"""The markdown of docs/performance.md from the benchmark's measurements: tables, ratios and target verdicts."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["performance_markdown"]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("**met**" if ok else "**missed**")


def _targets(
    rows: list[dict],
    baseline_rows: list[dict],
    memory_rows: list[dict],
    scaling_rows: list[dict],
    precision: dict[str, Any],
) -> list[dict[str, str]]:
    """The issue's CPU targets, each with its measured value and whether it is met."""
    by_path = {r["path"].split(" ")[0]: r for r in rows if "ms/slice" in r}
    out = []
    fp32_paths = {p: r["% of matmul"] for p, r in by_path.items() if not p.startswith("bf16")}
    fastest = max(fp32_paths, key=fp32_paths.get) if fp32_paths else None
    eager = f"; eager {fp32_paths['fp32']:.0f} %" if "fp32" in fp32_paths and fastest != "fp32" else ""
    out.append(
        {
            "target": "an fp32 inference path >= 60 % of the fp32 matmul rate",
            "measured": f"{fastest}: {fp32_paths[fastest]:.0f} %{eager}" if fastest else "-",
            "verdict": _verdict(None if fastest is None else fp32_paths[fastest] >= 60),
        }
    )
    default = next((r for r in rows if r["path"].endswith("(default)") and "ms/slice" in r), None)
    out.append(
        {
            "target": "the CPU default >= 50 % of the matmul rate of its precision (CPUs with native bf16)",
            "measured": f"{default['path']}: {default['% of matmul']:.0f} %" if default else "-",
            "verdict": _verdict(None if default is None else default["% of matmul"] >= 50),
        }
    )
    reduced = [(p, r["speed-up vs fp32 eager"]) for p, r in by_path.items() if p.startswith("bf16")]
    best = max(reduced, key=lambda t: t[1]) if reduced else None
    out.append(
        {
            "target": "a reduced-precision path >= 1.5 x faster than fp32 eager",
            "measured": f"{best[0]}: {best[1]:.2f} x" if best else "-",
            "verdict": _verdict(None if best is None else best[1] >= 1.5),
        }
    )
    delta = precision.get("max_abs_delta_db")
    out.append(
        {
            "target": "bf16 changes the shipped model's mean PSNR on the paper subjects by < 0.05 dB",
            "measured": (
                f"mean {precision['mean_delta_db']:+.4f} dB (max per subject {delta:.4f} dB)"
                if delta is not None
                else "-"
            ),
            "verdict": _verdict(None if delta is None else abs(precision["mean_delta_db"]) < 0.05),
        }
    )
    bm3d = next((r for r in baseline_rows if r.get("method") == "bm3d" and "ms/slice" in r), None)
    out.append(
        {
            "target": "default inference path >= 5 x faster per slice than BM3D",
            "measured": f"{bm3d['default network path is x faster']:.0f} x" if bm3d else "-",
            "verdict": _verdict(None if bm3d is None else bm3d["default network path is x faster"] >= 5),
        }
    )
    for r, limit in zip(memory_rows, (2048, 3072)):
        out.append(
            {
                "target": f"peak memory for {r['volume']} < {limit / 1024:.0f} GB",
                "measured": f"{r['peak RSS MB']:.0f} MB",
                "verdict": _verdict(r["peak RSS MB"] < limit),
            }
        )
    if scaling_rows:
        spread = max(abs(r["ms/slice relative to 89"] - 1.0) for r in scaling_rows)
        out.append(
            {
                "target": "time grows linearly with slices (ms/slice within 15 % from 89 to 356 slices)",
                "measured": f"max deviation {100 * spread:.0f} %",
                "verdict": _verdict(spread <= 0.15),
            }
        )
    return out


def _section(title: str, rows: list[dict[str, Any]], columns: list[str], intro: str = "") -> list[str]:
    """A report section: heading, optional introduction, table; nothing when there are no rows."""
    if not rows:
        return []
    return [f"## {title}", "", *([intro, ""] if intro else []), _table(rows, columns), ""]


def _shipped_model_sections(r: dict[str, Any]) -> list[str]:
    """Batch size, operator profile and whole-study latency of the shipped model."""
    text = _section(
        "Slices per network call (default path)",
        r.get("batches", []),
        ["slices per call", "ms/slice", "% of matmul"],
        "Whole-volume inference with the default path; smaller batches keep a call's activations in cache.",
    )
    profile = r.get("profile") or {}
    if profile:
        conv = next((row for row in profile["rows"] if row["operators"] == "convolution"), {"share %": float("nan")})
        text += _section(
            "Where the default path's time goes",
            profile["rows"],
            ["operators", "ms/slice", "share %"],
            f"torch.profiler, self time of the aten operators of {profile['batch']} slices per call "
            f"(`precision: {profile['precision']}`, channels-last, batch norms folded). The convolutions alone run "
            f"at {profile['conv_gflops']:.0f} GFLOP/s, {profile['conv_share_of_matmul']:.0f} % of the matmul rate, "
            f"but take only {conv['share %']:.0f} % of the time: the rest are passes over the activations that do "
            "no matrix arithmetic (ReLU, FiLM scale and shift, concatenation, upsampling, pooling) and are bound by "
            "memory bandwidth. The network as a whole therefore cannot reach 50 % of the matmul rate in eager mode; "
            "only fused kernels for those passes (a compiler such as `torch.compile`, at a compilation cost per "
            "volume shape) could lift it.",
        )
    study = r.get("study") or {}
    if study:
        stages = [{"stage": k, "s": v, "share %": 100 * v / study["seconds"]} for k, v in study["stages"].items()]
        shape = " x ".join(str(n) for n in study["shape"])
        text += _section(
            "One DICOM study, from reading to the written series",
            stages + [{"stage": "total", "s": study["seconds"], "share %": 100.0}],
            ["stage", "s", "share %"],
            f"`configs/inference.json` with the shipped model on one {shape} DICOM series (one file per slice), "
            f"`--drf 200`, default path; peak resident memory {study['peak RSS MB']:.0f} MB.",
        )
    return text


def performance_markdown(r: dict[str, Any], command: str) -> str:
    """The report for the measurements `r` (see `benchmark_report`), naming the command that regenerates it."""
    text = [
        "# Performance",
        "",
        f"Regenerate with `{command.strip()}` (about {r['minutes']:.0f} min on this machine).",
        "",
        f"Machine: {r['machine']}. Volume: one simulated `paper`-preset subject, {r['volume_shape'][0]} x "
        f"{r['volume_shape'][1]} x {r['volume_shape'][2]}.",
        "",
        f"Default inference path on this CPU: `{r['default_path']}` ("
        + (
            "native bf16, so `precision: auto` runs bf16 autocast"
            if not r["emulated_bf16"]
            else "no native bf16 (no AVX-512 BF16 or AMX), so `precision: auto` runs fp32; the bf16 rows are emulated bf16"
        )
        + ").",
        "",
        f"Measured matrix-multiply rate: fp32 {r['matmul']['fp32_gflops']:.0f} GFLOP/s ({r['matmul']['fp32_n']} x {r['matmul']['fp32_n']}), "
        f"bf16 {r['matmul']['bf16_gflops']:.0f} GFLOP/s ({r['matmul']['bf16_n']} x {r['matmul']['bf16_n']}).",
        f"Network FLOPs per 256 x 256 slice (convolutions, 2 x MACs): shipped CPU model {r['gflop_per_slice']['shipped']:.2f} GFLOP; "
        f"paper profile (base 32) {r['gflop_per_slice']['paper']:.2f} GFLOP.",
        "",
        f"Weights: `{r['weights']['path']}`, sha256 `{r['weights']['sha256']}` (the shipped model, with its "
        "dose-code input channel; every network row below times these weights).",
        "",
        f"## Inference paths (shipped model, whole volume, batches of {r['batch_slices']} slices)",
        "",
        _table(
            r["paths"],
            ["path", "ms/slice", "s/volume", "speed-up vs fp32 eager", "GFLOP/s", "% of matmul", "peak RSS MB", "note"],
        ),
        "",
    ]
    text += [
        "## Targets on this machine",
        "",
        _table(
            _targets(r["paths"], r["baselines"], r["memory"], r["scaling"], r["precision"]),
            ["target", "measured", "verdict"],
        ),
        "",
        "The GPU targets (<= 0.2 ms per slice, <= 50 ms per 89-slice volume for the paper width in bf16, the paper "
        "profile's 9-fold cross-validation with its simulation in <= 8 min on one H100) are measured by the prepared "
        "GPU run (`bash scripts/gpu_run.sh OUT` on the GPU machine, then `python scripts/gpu_report.py OUT` here), "
        "whose tables form the generated GPU run section at the end of this page; "
        + ("this run also timed the GPU below." if r["gpu_name"] is not None else "this benchmark run had no GPU."),
        "",
    ]
    text += _shipped_model_sections(r)
    text += _section(
        "Baselines on the same volume",
        r["baselines"],
        ["method", "ms/slice", "default network path is x faster", "peak RSS MB", "note"],
    )
    text += _section(
        f"Memory of the default path (streamed in batches of {r['batch_slices']} slices)",
        r["memory"],
        ["volume", "peak RSS MB", "s/volume"],
    )
    text += _section(
        "Scaling with volume length (default path)",
        r["scaling"],
        ["slices", "s/volume", "ms/slice", "ms/slice relative to 89"],
    )
    text += _section(
        f"Training throughput (network steps, {'fp32' if r['emulated_bf16'] else 'bf16 autocast'} + channels-last, "
        "as `precision: auto` trains on this CPU)",
        r["training"],
        ["profile", "slices/s"],
    )
    text += _section("Simulator throughput", r["simulator"], ["preset", "subjects/min", "subjects timed"])
    text += _section(
        "Batch inference load",
        r["load"],
        ["studies done", "resident MB"],
        "50 studies of 128 x 128 x 80 (the `quick` preset) in one inference run (`configs/inference.json`, shipped "
        "model, default path); resident memory after 5, 25 and 50 studies:",
    )
    if r["precision"]:
        text += [
            "## Reduced precision on the paper subjects",
            "",
            "The shipped model denoises the paper subjects (`data/simulated_quick`, never trained on) at DRF 20 and "
            "200 through the shipped inference path in fp32 and in bf16 ("
            + (
                "the default here"
                if not r["emulated_bf16"]
                else "the default on CPUs with native bf16; " "emulated here"
            )
            + "); PSNR against "
            "the full-dose reference inside the brain mask:",
            "",
            "```",
            json.dumps(r["precision"], indent=2),
            "```",
            "",
        ]
    if r["gpu_rows"]:
        text += [
            f"## GPU: {r['gpu_name']}",
            "",
            f"All {r['volume_shape'][2]} slices in one batch; targets <= 0.2 ms per slice in bf16 or fp16 and <= 50 ms per volume "
            "including transfers.",
            "",
            _table(r["gpu_rows"], ["precision", "ms/slice", "ms/volume incl. transfers"]),
            "",
            "GPU training time: `time python scripts/crossval.py --profile paper` with `nvidia-smi dmon -s u` "
            "sampling utilisation.",
            "",
        ]
    else:
        text += ["GPU: none in this benchmark run.", ""]
    return "\n".join(text)
