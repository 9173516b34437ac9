"""Table II of the report: milliseconds per 256 x 256 slice for every method, measured side by side in one run
(each method in a fresh process, classical filters with the parameters tuned for the study's first test subject)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from ..baselines.per_fold import tuned_records
from ..benchmark.measure import machine_description
from ..benchmark.tasks import run_task_in_subprocess
from ..deploy.inference_paths import default_inference_path

__all__ = ["table_ii_timings"]


def _tuned_or_default_params(baselines_dir: Path, name: str) -> dict[str, Any]:
    """A baseline's parameters as tuned for the first test subject of the study (timing depends on them), else none:
    the filter's own defaults apply."""
    records = tuned_records(baselines_dir, name)
    return dict(next(iter(records.values()))["params"]) if records else {}


def table_ii_timings(
    config_files: Sequence[str],
    overrides: dict[str, Any],
    acnet_files: Sequence[str] | None,
    acnet_overrides: dict[str, Any],
    baselines: Sequence[str],
    workdir: Path,
) -> dict[str, Any]:
    """The report's Table II: ms per 256 x 256 slice for every method, measured side by side."""
    clean = {
        k: v for k, v in overrides.items() if k in ("base_features", "num_poolings", "convs_per_stage", "num_slices")
    }
    result: dict[str, float] = {}
    for name in baselines:
        slices = {"gaussian": 89, "nlm": 8, "bm3d": 4}.get(name, 4)
        params = _tuned_or_default_params(workdir / "baselines", name)
        out, _ = run_task_in_subprocess("classical", {"method": name, "slices": slices, "params": params})
        result[{"gaussian": "Gaussian", "nlm": "NLM", "bm3d": "BM3D"}[name]] = out["ms_per_slice"]
    default = default_inference_path()
    if acnet_files:
        out, _ = run_task_in_subprocess(
            "inference",
            {
                "config_files": list(acnet_files),
                "overrides": dict(acnet_overrides),
                "path": default,
                "slices": 16,
                "repeat": 2,
                "workdir": str(workdir),
            },
        )
        result[f"AC-Net ({default})"] = out["ms_per_slice"]
    for path in dict.fromkeys(("fp32", default)):
        out, _ = run_task_in_subprocess(
            "inference", {"config_files": list(config_files), "overrides": clean, "path": path, "workdir": str(workdir)}
        )
        result[f"proposed ({path})"] = out["ms_per_slice"]
    return {
        "cpu_ms_per_slice": result,
        "machine": machine_description(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available in this environment",
    }
