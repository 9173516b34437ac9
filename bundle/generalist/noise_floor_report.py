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

__all__ = [
    "model_repeats_summary",
    "noise_floor_markdown",
    "noise_floor_rows_summary",
    "simulation_config",
    "subject_noise_floor_rows",
]

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
    model_on_repeats: bool = False,
) -> list[dict[str, Any]]:
    """One row per lesion and DRF: its noise floor, the test set's own low-dose image's bias and the model's; with
    `model_on_repeats`, also the model's own spread and mean error over the same thinnings (`_model_over_repeats`),
    which says how far its single-acquisition bias is luck and what a lesion target can ask of it."""
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
            repeated = (
                _denoised_thinnings(volumes, affine, drf, repeats, denoise, Path(path).suffixes)
                if model_on_repeats
                else None
            )
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
                        **(_model_over_repeats(repeated, mask, reference, vox) if repeated is not None else {}),
                    }
                )
    return rows


def _denoised_thinnings(
    volumes: dict[str, np.ndarray],
    affine: np.ndarray,
    drf: float,
    repeats: int,
    denoise: Denoise,
    suffixes: Sequence[str],
) -> list[np.ndarray]:
    """The model's output (RAS) on each repeated thinning, each written as the dataset writes its low-dose images."""
    import tempfile

    import nibabel as nib

    from ..simulation.subject_volumes import drf_tag

    out = []
    with tempfile.TemporaryDirectory(prefix="noise-floor-") as folder:
        for k in range(repeats):
            path = Path(folder) / f"thinning{k}{''.join(suffixes) or '.nii.gz'}"
            nib.save(nib.Nifti1Image(np.asarray(volumes[f"pet_{drf_tag(drf)}_rep{k}"], np.float32), affine), path)
            out.append(denoise(str(path), float(drf)))
    return out


def _model_over_repeats(
    outputs: Sequence[np.ndarray], mask: np.ndarray, reference: dict[str, float], vox: tuple[float, float, float]
) -> dict[str, float]:
    """The model's SUVmean and SUVmax bias (%) over the thinnings: SD, mean and mean absolute value."""
    values = [lesion_values(image, mask, vox) for image in outputs]
    out = {}
    for key in ("suv_mean", "suv_max"):
        biases = np.array([bias_pct(v[key], reference[key]) for v in values])
        out[f"model_repeats_{key}_sd_pct"] = float(np.std(biases, ddof=1))
        out[f"model_repeats_{key}_bias_pct"] = float(biases.mean())
        out[f"model_repeats_abs_{key}_bias_pct"] = float(np.abs(biases).mean())
    return out


def model_repeats_summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per test set, DRF and hot-lesion group: the floor's and the model's SD of SUVmax over the thinnings, and the
    model's mean |SUVmean| and |SUVmax| bias over them (what issue 31's targets read on one acquisition)."""
    out = []
    for test_set in dict.fromkeys(r["test_set"] for r in rows):
        for drf in sorted({r["drf"] for r in rows if r["test_set"] == test_set}):
            for group, small in (("hot", None), ("hot, under 100 voxels", True)):
                mine = [
                    r
                    for r in rows
                    if r["test_set"] == test_set
                    and r["drf"] == drf
                    and r["polarity"] == "hot"
                    and "model_repeats_suv_max_sd_pct" in r
                    and (small is None or r["small"])
                ]
                if not mine:
                    continue

                def mean(key: str) -> float:
                    return float(np.mean([r[key] for r in mine]))

                out.append(
                    {
                        "test set": test_set,
                        "DRF": f"{drf:g}",
                        "lesions": group,
                        "n": len(mine),
                        "input SUVmax SD %": f"{mean('suv_max_sd_pct'):.1f}",
                        "model SUVmax SD %": f"{mean('model_repeats_suv_max_sd_pct'):.1f}",
                        "model SUVmax bias, mean %": f"{mean('model_repeats_suv_max_bias_pct'):+.1f}",
                        "model mean abs SUVmax bias %": f"{mean('model_repeats_abs_suv_max_bias_pct'):.1f}",
                        "model SUVmean SD %": f"{mean('model_repeats_suv_mean_sd_pct'):.1f}",
                        "model mean abs SUVmean bias %": f"{mean('model_repeats_abs_suv_mean_bias_pct'):.1f}",
                    }
                )
    return out


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
    repeated = model_repeats_summary(rows)
    if repeated:
        summary_lines = [
            "## The model on every thinning",
            "",
            "The model run on each of the repeated thinnings (hot lesions; means over lesions of each lesion's SD and "
            "mean over the thinnings): what its SUVmax and SUVmean read on one acquisition, and how much of that is "
            "its own spread.",
            "",
            format_table(repeated, list(repeated[0])),
            "",
        ]
    else:
        summary_lines = []
    reproduced = max((r["full_dose_reproduced_max_rel_diff"] for r in rows), default=float("nan"))
    lines = list(header) + [
        f"The subjects' full-dose images simulated again match the test sets' to a relative difference of at most "
        f"{reproduced:.2g} (the default dataset's legacy Poisson sampler depends on the CPU and thread count).",
        "",
        "## Summary",
        "",
        format_table(summary, list(summary[0])) if summary else "(no lesions)",
        "",
        *summary_lines,
        "## Every lesion",
        "",
        format_table(lesions, list(lesions[0])) if lesions else "(no lesions)",
        "",
    ]
    return "\n".join(lines) + "\n"
