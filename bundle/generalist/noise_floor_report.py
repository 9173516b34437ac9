"""Lesion bias read against its noise floor (`quantification.noise_floor`), on simulated test sets whose subjects are
simulated again, from their own manifest's settings, with repeated thinnings of the same full-dose counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..data import at_dose, lesion_kinds, load_datalist
from ..io import load_ras_volume, read_json
from ..metrics.lesion import bias_pct, lesion_values
from ..quantification.noise_floor import lesion_noise_floor
from ..quantification.records import KIND_POLARITY, SMALL_LESION_VOXELS
from ..quantification.references import SubjectReferences
from ..tables import format_table

__all__ = ["noise_floor_markdown", "noise_floor_rows_summary", "simulation_config", "subject_noise_floor_rows"]

Denoise = Callable[[str, float], np.ndarray]  # (low-dose NIfTI path, DRF) -> RAS volume


def simulation_config(folder: str | Path) -> Any:
    """The `SimulationConfig` a simulated dataset was made with (its manifest's settings)."""
    from ..simulation import ReconstructionSettings, SimulationConfig

    settings = dict(read_json(Path(folder) / "manifest.json", "simulation manifest")["settings"])
    settings.pop("geometry", None)
    settings["recon"] = ReconstructionSettings(**settings["recon"])
    settings["drfs"] = tuple(settings["drfs"])
    settings["device"] = "cpu"
    return SimulationConfig(**settings)


def _ras(array: np.ndarray, affine: np.ndarray) -> np.ndarray:
    import nibabel as nib

    return np.asarray(nib.as_closest_canonical(nib.Nifti1Image(np.asarray(array, np.float32), affine)).dataobj)


def subject_noise_floor_rows(
    test_set: str,
    folder: str | Path,
    drfs: Sequence[float],
    repeats: int,
    denoise: Denoise,
    subjects: int | None = None,
) -> list[dict[str, Any]]:
    """One row per lesion and DRF: its noise floor, the test set's own low-dose image's bias and the model's."""
    import torch

    from ..simulation.subject_volumes import build_projector, drf_tag, simulate_subject_volumes

    config = simulation_config(folder)
    projector = build_projector(config, torch.device("cpu"))
    datalist = Path(folder) / "datalist.json"
    kinds = lesion_kinds(datalist)
    rows = []
    for item in load_datalist(datalist)[:subjects]:
        references = SubjectReferences(item)
        if references.lesion is None:
            continue
        index = int(item["subject"].split("-")[-1]) - 1
        volumes, affine, _ = simulate_subject_volumes(
            index, config, projector, {float(d): repeats for d in drfs}, dose_levels=False
        )
        full = _ras(volumes["pet_full"], affine)
        reproduced = float(np.abs(full - references.full).max() / np.abs(references.full).max())
        lesion_map = np.rint(references.lesion).astype(int)
        vox = references.voxel_size_mm
        for drf in drfs:
            thinnings = [_ras(volumes[f"pet_{drf_tag(drf)}_rep{k}"], affine) for k in range(repeats)]
            floors = lesion_noise_floor(thinnings, references.full, lesion_map, kinds.get(item["subject"], {}), vox)
            path = at_dose([item], float(drf))[0]["image"]
            low, prediction = load_ras_volume(path), denoise(path, float(drf))
            for floor in floors:
                mask = lesion_map == floor["label"]
                reference = lesion_values(references.full, mask, vox)
                model = lesion_values(prediction, mask, vox)
                model_bias = bias_pct(model["suv_mean"], reference["suv_mean"])
                rows.append(
                    {
                        "test_set": test_set,
                        "subject": item["subject"],
                        "drf": float(drf),
                        **floor,
                        "polarity": KIND_POLARITY.get(floor["kind"], "unknown"),
                        "small": floor["voxels"] < SMALL_LESION_VOXELS,
                        "input_suv_mean_bias_pct": bias_pct(
                            lesion_values(low, mask, vox)["suv_mean"], reference["suv_mean"]
                        ),
                        "model_suv_mean_bias_pct": model_bias,
                        "model_suv_max_bias_pct": bias_pct(model["suv_max"], reference["suv_max"]),
                        "model_bias_in_floor_sd": model_bias / floor["suv_mean_sd_pct"],
                        "full_dose_reproduced_max_rel_diff": reproduced,
                    }
                )
    return rows


def noise_floor_rows_summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per test set, DRF and group (hot lesions, hot lesions under 100 voxels, cold lesions): the mean floor SD, the
    input's and the model's mean SUVmean bias, whether the model's mean bias lies within 2 mean floor SDs, and how
    many lesions have their own |bias| within 2 of their floor SDs."""
    groups = {
        "hot": lambda r: r["polarity"] == "hot",
        "hot, under 100 voxels": lambda r: r["polarity"] == "hot" and r["small"],
        "cold": lambda r: r["polarity"] == "cold",
    }
    out = []
    for test_set in dict.fromkeys(r["test_set"] for r in rows):
        for drf in sorted({r["drf"] for r in rows if r["test_set"] == test_set}):
            for group, keep in groups.items():
                mine = [r for r in rows if r["test_set"] == test_set and r["drf"] == drf and keep(r)]
                if not mine:
                    continue
                floor = float(np.mean([r["suv_mean_sd_pct"] for r in mine]))
                bias = float(np.mean([r["model_suv_mean_bias_pct"] for r in mine]))
                within = sum(abs(r["model_bias_in_floor_sd"]) <= 2.0 for r in mine)
                out.append(
                    {
                        "test set": test_set,
                        "DRF": f"{drf:g}",
                        "lesions": group,
                        "n": len(mine),
                        "floor: SD of SUVmean, mean %": f"{floor:.1f}",
                        "input SUVmean bias, mean %": f"{np.mean([r['input_suv_mean_bias_pct'] for r in mine]):+.1f}",
                        "model SUVmean bias, mean %": f"{bias:+.1f}",
                        "model mean bias within 2 floor SDs": "yes" if abs(bias) <= 2.0 * floor else "**no**",
                        "lesions with |bias| <= 2 own SDs": f"{within}/{len(mine)}",
                    }
                )
    return out


def noise_floor_markdown(rows: Sequence[dict[str, Any]], header: Sequence[str]) -> str:
    """The report: `header`, the summary, then every lesion."""
    summary = noise_floor_rows_summary(rows)
    lesions = [
        {
            "test set": r["test_set"],
            "subject": r["subject"],
            "lesion": f"{r['label']} ({r['kind']})",
            "voxels": r["voxels"],
            "DRF": f"{r['drf']:g}",
            "floor SD SUVmean / SUVmax %": f"{r['suv_mean_sd_pct']:.1f} / {r['suv_max_sd_pct']:.1f}",
            "input bias %": f"{r['input_suv_mean_bias_pct']:+.1f}",
            "model SUVmean / SUVmax bias %": f"{r['model_suv_mean_bias_pct']:+.1f} / {r['model_suv_max_bias_pct']:+.1f}",
            "model bias in floor SDs": f"{r['model_bias_in_floor_sd']:+.1f}",
        }
        for r in rows
    ]
    reproduced = max((r["full_dose_reproduced_max_rel_diff"] for r in rows), default=float("nan"))
    lines = list(header) + [
        f"The subjects' full-dose images simulated again match the test sets' to a relative difference of at most "
        f"{reproduced:.2g} (the default dataset's legacy Poisson sampler depends on the CPU and thread count).",
        "",
        "## Summary",
        "",
        format_table(summary, list(summary[0])) if summary else "(no lesions)",
        "",
        "## Every lesion",
        "",
        format_table(lesions, list(lesions[0])) if lesions else "(no lesions)",
        "",
    ]
    return "\n".join(lines) + "\n"
