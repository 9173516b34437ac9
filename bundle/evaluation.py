"""Evaluation reports: per-subject and per-slice NRMSE/PSNR/SSIM for the low-dose input and the prediction,
CSV files, PNG panels, and a printed table. Used by `configs/evaluate.json` as an Ignite handler."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from ignite.engine import Engine, Events

from .errors import InputDataError, OutputExistsError
from .io import atomic_path, clean_stale_temporaries, ensure_writable_dir, write_json
from .metrics import check_mask, evaluate_volume, image_metrics, slice_metrics
from .quantification import evaluation_record, lesions_of
from .tables import format_table, write_csv

__all__ = ["RECORDS_FILE", "EvaluationReport", "save_panel", "check_prediction_geometry", "lesion_slice"]

RECORDS_FILE = "records.json"
"""Every method's evaluation record of every subject (`quantification.evaluation_record`), written last."""

logger = logging.getLogger(__name__)


def _np(x: Any) -> np.ndarray:
    return (
        np.asarray(torch.as_tensor(x).detach().float().cpu())
        if isinstance(x, torch.Tensor)
        else np.asarray(x, dtype=np.float32)
    )


def lesion_slice(mask: np.ndarray, lesion: np.ndarray | None = None) -> int:
    """The axial slice through the lesion's largest cross-section, else the slice with the most mask."""
    source = lesion if lesion is not None and np.any(lesion > 0) else mask
    return int(np.argmax((source > 0).reshape(-1, source.shape[-1]).sum(0)))


def save_panel(
    images: Mapping[str, np.ndarray],
    reference: np.ndarray,
    z: int,
    path: str | Path,
    title: str = "",
    overwrite: bool = True,
) -> Path:
    """PNG panel of one axial slice: the given images on a common scale, then |image - reference| maps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(images)
    vmax = float(np.percentile(reference[..., z], 99.9)) or 1.0
    errors = [n for n in names if images[n] is not reference]
    fig, axes = plt.subplots(2, len(names), figsize=(3.2 * len(names), 6.6), squeeze=False)
    for i, name in enumerate(names):
        axes[0, i].imshow(np.rot90(images[name][..., z]), cmap="gray_r", vmin=0, vmax=vmax)
        axes[0, i].set_title(name, fontsize=9)
        if name in errors:
            axes[1, i].imshow(
                np.rot90(np.abs(images[name][..., z] - reference[..., z])), cmap="magma", vmin=0, vmax=0.5 * vmax
            )
            axes[1, i].set_title(f"|{name} - reference|", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(path)


def check_prediction_geometry(pred: Any, reference: Any, name: str = "prediction") -> None:
    """Refuse a prediction whose shape or affine differs from the reference."""
    if tuple(pred.shape) != tuple(reference.shape):
        raise InputDataError(f"{name}: shape {tuple(pred.shape)} differs from the reference's {tuple(reference.shape)}")
    a, b = getattr(pred, "affine", None), getattr(reference, "affine", None)
    if a is not None and b is not None and not np.allclose(_np(a), _np(b), atol=1e-3):
        raise InputDataError(f"{name}: affine differs from the reference's")


class EvaluationReport:
    """Ignite handler for an evaluator whose output holds `pred` and whose batch holds the low-dose `input`
    (single channel), `label` and `mask` in the original space and units after inversion.

    Writes `<output_dir>/metrics_per_subject.csv`, `metrics_per_slice.csv`, `regions_per_subject.csv`,
    `lesions_per_subject.csv` (with a lesion map, each lesion with its kind from `lesion_kinds`: subject -> label ->
    kind), `panels/<subject>.png`, and last `records.json` (the records the dose and lesion tables are built from).
    `drf` is the dose-reduction factor of the evaluated low-dose images (None: not known).
    """

    def __init__(
        self,
        output_dir: str | Path,
        input_key: str = "input",
        lesion_key: str = "lesion",
        subject_key: str = "subject",
        baselines: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        drf: float | None = None,
        lesion_kinds: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.baselines = dict(baselines or {})
        self.input_key, self.lesion_key, self.subject_key = input_key, lesion_key, subject_key
        self.overwrite = overwrite
        self.drf = None if drf is None else float(drf)
        self.lesion_kinds = {s: dict(k) for s, k in (lesion_kinds or {}).items()}
        self.subject_rows: list[dict[str, Any]] = []
        self.slice_rows: list[dict[str, Any]] = []
        self.region_rows: list[dict[str, Any]] = []
        self.lesion_rows: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._on_iteration)

    def _reset(self, engine: Engine) -> None:
        ensure_writable_dir(self.output_dir, "evaluation output folder")
        for folder in (self.output_dir, self.output_dir / "predictions", self.output_dir / "panels"):
            for stale in clean_stale_temporaries(folder):
                logger.info("removed %s, left by an interrupted run", stale)
        existing = self.output_dir / "metrics_per_subject.csv"
        if existing.exists() and not self.overwrite:
            raise OutputExistsError(f"{existing}: evaluation results already exist; set overwrite to replace them")
        self.subject_rows, self.slice_rows, self.region_rows, self.lesion_rows = [], [], [], []
        self.records = []

    def _on_iteration(self, engine: Engine) -> None:
        outputs = engine.state.output if isinstance(engine.state.output, list) else [engine.state.output]
        batches = engine.state.batch if isinstance(engine.state.batch, list) else [engine.state.batch]
        for out, batch in zip(outputs, batches):
            # post-processing (Invertd) writes keys present in the output back to the output, others to the batch
            def get(key: str) -> Any:
                return out[key] if key in out else batch.get(key)

            image = get(self.input_key)
            voxel = tuple(float(v) for v in np.asarray(getattr(image, "pixdim", (1.0, 1.0, 1.0)))[:3])
            lesion, truth, tissue = (get(k) for k in (self.lesion_key, "truth", "tissue"))
            self.add(
                str(batch.get(self.subject_key, f"case{len(self.subject_rows)}")),
                _np(out["pred"])[0],
                _np(get("label"))[0],
                _np(image)[0],
                _np(get("mask"))[0] > 0.5,
                None if lesion is None else _np(lesion)[0],
                voxel,
                truth=None if truth is None else _np(truth)[0],
                tissue=None if tissue is None else _np(tissue)[0],
            )

    def add(
        self,
        subject: str,
        pred: np.ndarray,
        label: np.ndarray,
        low_dose: np.ndarray,
        mask: np.ndarray,
        lesion: np.ndarray | None = None,
        voxel_size_mm: tuple[float, float, float] = (1.0, 1.0, 1.0),
        truth: np.ndarray | None = None,
        tissue: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Score one subject (original units): the low-dose input, each baseline and the network.

        Besides NRMSE, PSNR and SSIM, every method gets the regional PSNR (brain interior, edge band, grey and white
        matter with a tissue map), the paper-convention PSNR, and with a lesion map each lesion's SUVmean, SUVmax
        and SUVpeak bias against the full dose (and the phantom) and its contrast recovery
        (`lesions_per_subject.csv`, `regions_per_subject.csv`; means over the hot and over the cold lesions in the
        subject's row)."""
        check_mask(mask, f"mask of {subject}")
        check_prediction_geometry(pred, label, f"prediction of {subject}")
        row: dict[str, Any] = {"subject": subject}
        images = {"low_dose": low_dose}
        images.update({name: baseline(low_dose, voxel_size_mm) for name, baseline in self.baselines.items()})
        images["network"] = pred
        for method, image in images.items():
            for k, v in image_metrics(image, label, mask).items():
                row[f"{method}_{k}"] = v
            for s in slice_metrics(image, label, mask):
                self.slice_rows.append({"subject": subject, "method": method, **s})
        lesions = lesion if lesion is not None and np.any(lesion > 0) else None
        for method, image in images.items():
            row.update(self._quantify(subject, method, image, label, mask, voxel_size_mm, lesions, truth, tissue))
        row["drf"] = self.drf
        self.subject_rows.append(row)
        z = lesion_slice(mask, lesion)
        save_panel(
            {**{k.replace("_", " "): v for k, v in images.items()}, "full dose": label},
            label,
            z,
            self.output_dir / "panels" / f"{subject}.png",
            title=f"{subject}, axial slice {z}",
            overwrite=True,
        )
        return row

    def _quantify(self, subject, method, image, label, mask, voxel_size_mm, lesions, truth, tissue) -> dict[str, Any]:
        """Regional and lesion metrics of one method: detail rows and the record kept for the files, summary columns
        returned."""
        result = evaluate_volume(image, label, mask, voxel_size_mm, lesions, truth, tissue)
        record = evaluation_record(subject, self.drf, method, result, self.lesion_kinds.get(subject))
        self.records.append(record)
        columns: dict[str, Any] = {f"{method}_paper_convention_psnr": result["paper_convention"]["psnr"]}
        where = {"subject": subject, "drf": self.drf, "method": method}
        for region, values in result["regions"].items():
            columns[f"{method}_{region}_psnr"] = values["psnr"]
            self.region_rows.append({**where, "region": region, **values})
        for label_id, values in record["lesions"].items():
            self.lesion_rows.append({**where, "lesion": label_id, **values})
        for kind in ("hot", "cold"):
            lesions = lesions_of(record, kind)
            if lesions:
                biases = [v["suv_mean_bias_pct"] for v in lesions]
                columns[f"{method}_{kind}_lesion_suv_mean_bias_pct"] = float(np.mean(biases))
                columns[f"{method}_{kind}_lesion_worst_suv_mean_bias_pct"] = float(max(biases, key=abs))
                columns[f"{method}_{kind}_lesion_suv_max_bias_pct"] = float(
                    np.mean([v["suv_max_bias_pct"] for v in lesions])
                )
        if result["white_matter_cv"] is not None:
            columns[f"{method}_white_matter_cv"] = result["white_matter_cv"]
        return columns

    def finish(self) -> list[dict[str, Any]]:
        """Write the CSV files and print the per-subject table; returns the per-subject rows."""
        if not self.subject_rows:
            raise InputDataError("evaluation: no subjects were evaluated")
        write_csv(self.subject_rows, self.output_dir / "metrics_per_subject.csv", overwrite=True)
        write_csv(self.slice_rows, self.output_dir / "metrics_per_slice.csv", overwrite=True)
        write_csv(self.region_rows, self.output_dir / "regions_per_subject.csv", overwrite=True)
        if self.lesion_rows:
            write_csv(self.lesion_rows, self.output_dir / "lesions_per_subject.csv", overwrite=True)
        write_json(self.records, self.output_dir / RECORDS_FILE, overwrite=True)
        methods = ["low_dose", *self.baselines, "network"]
        cols = ["subject"] + [f"{m}_{k}" for k in ("nrmse", "psnr", "ssim") for m in methods]
        lesion_cols = [f"{m}_{kind}_lesion_suv_mean_bias_pct" for kind in ("hot", "cold") for m in methods]
        cols += [c for c in lesion_cols if any(c in row for row in self.subject_rows)]
        dose = "of unknown DRF" if self.drf is None else f"at DRF {self.drf:g}"
        print(f"Test subject(s) {dose}; lesion columns: mean SUVmean bias in % against the full dose", flush=True)
        print(format_table(self.subject_rows, cols), flush=True)
        return self.subject_rows
