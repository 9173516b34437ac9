"""Measurements of the shipped model as users run it: a DICOM study from reading to the written series, stage by
stage; where the network's time goes (operator profile, the convolutions' own rate); and what bf16 changes in PSNR
on the paper subjects, through the shipped inference path."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

__all__ = ["operator_profile", "precision_psnr", "study_latency"]

# aten operators grouped by what they do to the activations
_OPERATOR_KINDS = {  # the first kind whose names occur in the operator's name takes it
    "convolution": ("convolution", "conv2d"),
    "FiLM code (small MLP)": ("aten::addmm", "aten::linear"),
    "ReLU": ("clamp_min", "relu", "threshold"),
    "batch norm": ("batch_norm",),
    "FiLM and residual (mul, add)": ("aten::mul", "aten::add"),
    "concatenate skips": ("aten::cat",),
    "upsampling": ("upsample",),
    "max pooling": ("max_pool",),
    "copies and padding": ("copy_", "pad", "contiguous", "aten::to", "_to_copy"),
}


class _Timed:
    """A callable that adds its wrapped callable's wall time to `totals[name]`."""

    def __init__(self, fn: Callable, totals: dict[str, float], name: str) -> None:
        self.fn, self.totals, self.name = fn, totals, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.totals[self.name] = self.totals.get(self.name, 0.0) + time.perf_counter() - start


class _TimedDataset:
    """The inference dataset with its item loading (reading and preprocessing) timed."""

    def __init__(self, dataset: Any, totals: dict[str, float]) -> None:
        self._dataset, self._load = dataset, _Timed(dataset.__getitem__, totals, "read and preprocess")

    def __getitem__(self, index: int) -> Any:
        return self._load(index)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dataset, name)


def study_latency(volume: np.ndarray, workdir: str | Path, drf: float = 200.0) -> dict[str, Any]:
    """Seconds to denoise one DICOM study with `configs/inference.json` (the shipped model, default path), from
    parsing the config to the written NIfTI file, DICOM series and record, split into stages."""
    from monai.bundle import ConfigWorkflow

    from ..deploy.synthetic_dicom import write_pet_series

    root = Path(workdir)
    write_pet_series(volume * 1000.0, root / "in" / "study")  # activity in Bq/mL
    totals: dict[str, float] = {}
    start = time.perf_counter()
    wf = ConfigWorkflow(
        config_file="configs/inference.json",
        workflow_type=None,
        logging_file=False,
        input_dir=str(root / "in"),
        output_dir=str(root / "out"),
        progress=False,
        drf=drf,
    )
    wf.initialize()
    runner = wf.parser.get_parsed_content("evaluator")
    totals["parse the config, load the model"] = time.perf_counter() - start
    runner.dataset = _TimedDataset(runner.dataset, totals)
    denoiser = runner.study_denoiser
    denoiser.inferer = _Timed(denoiser.inferer, totals, "network (whole volume)")
    denoiser.postprocessing = _Timed(denoiser.postprocessing, totals, "back to the study's grid and units")
    runner.dicom_writer = _Timed(runner.dicom_writer, totals, "write the DICOM series")
    run_start = time.perf_counter()
    results = runner.run()
    total = time.perf_counter() - start
    totals["NIfTI output, record, checks"] = (time.perf_counter() - run_start) - sum(
        v for k, v in totals.items() if k != "parse the config, load the model"
    )
    if [r.status for r in results] != ["ok"]:
        raise RuntimeError(f"study latency: the study was not denoised: {[r.message for r in results]}")
    return {"seconds": total, "stages": totals, "shape": list(volume.shape)}


def operator_profile(
    network: torch.nn.Module, in_channels: int, precision: str, channels_last: bool, batch: int, conv_gflop: float
) -> dict[str, Any]:
    """Where one network call on `batch` 256 x 256 slices spends its time (torch.profiler, self CPU time of the aten
    operators, grouped by kind), and the convolutions' own rate (their FLOPs over their time), in GFLOP/s."""
    from torch.profiler import ProfilerActivity, profile

    from ..inferers import autocast_context, resolve_precision

    model = network.to(memory_format=torch.channels_last) if channels_last else network
    x = torch.rand(batch, in_channels, 256, 256)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = resolve_precision(precision, "cpu")
    with torch.no_grad(), autocast_context(dtype, "cpu"):
        for _ in range(2):
            model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                model(x)
    per_kind: dict[str, float] = {}
    for event in prof.key_averages():
        if not event.key.startswith("aten::"):
            continue
        kind = next((k for k, names in _OPERATOR_KINDS.items() if any(n in event.key for n in names)), "other")
        per_kind[kind] = per_kind.get(kind, 0.0) + event.self_cpu_time_total / 1e6
    total = sum(per_kind.values())
    rows = [
        {"operators": kind, "ms/slice": 1000 * seconds / (3 * batch), "share %": 100 * seconds / total}
        for kind, seconds in sorted(per_kind.items(), key=lambda kv: -kv[1])
    ]
    conv_seconds = per_kind.get("convolution", float("nan")) / (3 * batch)
    return {"rows": rows, "conv_gflops": conv_gflop / conv_seconds, "batch": batch, "precision": precision}


def precision_psnr(
    weights: str | Path, datalist: str | Path, drfs: Sequence[float], subjects: int | None = None
) -> dict[str, Any]:
    """PSNR (brain mask, against full dose) of the shipped path in fp32 and in bf16 on the datalist's subjects at
    each DRF in `drfs`; the mean and largest per-study difference."""
    from ..baselines.tuning import load_cases
    from ..data import at_dose, load_datalist
    from ..deploy.trained_denoiser import TrainedDenoiser
    from ..metrics import masked_psnr

    items = load_datalist(datalist)[:subjects]
    models = {p: TrainedDenoiser(weights, precision=p) for p in ("fp32", "bf16")}
    deltas, rows = [], []
    for drf in drfs:
        studies = at_dose(items, float(drf))
        for item, case in zip(studies, load_cases(studies)):
            psnr = {p: masked_psnr(m(item["image"], drf), case.full, case.mask) for p, m in models.items()}
            deltas.append(psnr["bf16"] - psnr["fp32"])
            rows.append({"subject": item.get("subject", ""), "drf": drf, **psnr})
    return {
        "studies": len(deltas),
        "drfs": [float(d) for d in drfs],
        "mean_psnr_fp32": float(np.mean([r["fp32"] for r in rows])),
        "mean_delta_db": float(np.mean(deltas)),
        "max_abs_delta_db": float(np.max(np.abs(deltas))),
    }
