"""Batch inference over studies with per-study fault isolation, progress and a final summary."""

from __future__ import annotations

import gc
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from monai.data import MetaTensor

from ..errors import InputDataError, one_line, root_cause
from ..io import ensure_writable_dir
from ..writers import AtomicNibabelWriter
from .output_lock import OutputFolderLock
from .study_denoiser import StudyDenoiser
from .study_finder import StudyFolder
from .study_identity import identity_differences, study_identity
from .study_outputs import StudyOutputs, clean_stale_staging

__all__ = ["BatchInference", "StudyResult", "write_nifti_like"]

logger = logging.getLogger(__name__)


@dataclass
class StudyResult:
    name: str
    status: str  # "ok", "failed" or "skipped"
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    message: str = ""


def write_nifti_like(image: MetaTensor, path: str | Path, overwrite: bool = False) -> Path:
    """Write a (1, X, Y, Z) MetaTensor as NIfTI with its affine, atomically."""
    writer = AtomicNibabelWriter(output_dtype=torch.float32)
    writer.overwrite = overwrite
    writer.set_data_array(image, channel_dim=0)
    writer.set_metadata(meta_dict=image.meta, resample=False)
    writer.write(str(path), verbose=False)
    return Path(path)


class BatchInference:
    """Denoise every study; a failing study is reported by name and skipped, the others complete.

    Args:
        dataset: the studies (a `StudyFolder`): `dataset.studies` lists them ({"image", "name", "format"}) and
            `dataset[i]` is study i preprocessed into the network input `image` (1 + E, X, Y, Z) with invertible history.
        inferer: whole-volume inferer (e.g. StreamingSliceInferer).
        postprocessing: transforms mapping `pred` back to the input's space and units (Invertd).
        network: the model (torch module, TorchScript module or ONNX Runtime wrapper).
        output_dir: where `<name>_denoised.nii.gz` (and DICOM series) are written.
        dicom_writer: callable(study, pred MetaTensor, output_dir, overwrite) for DICOM inputs, or None.
        overwrite: replace existing outputs; otherwise a study whose outputs are complete is skipped, and an output
            name held by a file that is not a complete output of the study is refused (`study_outputs`).
        on_study: optional callable(StudyResult) after every study (progress reporting, load measurements).
        noise_check: optional callable(name, image) returning a one-line warning when a study's noise level lies
            outside the trained range (`noise_check.NoiseLevelCheck`); the study is still denoised.
        dose_input: for a dose-conditioned model, callable(name, image, drf, study) returning the dose-code channel
            appended to the network input (`dose_input.DoseInput`, whose `used` names each study's DRF and source);
            None for a dose-blind model.
        run_identity: this run's model sha256, backend, precision and dose setting (`study_identity.run_identity`);
            with the input's sha256 it is recorded with every study's outputs, and a rerun skips a study only when
            they all match (otherwise, without overwrite, the study fails naming what differs).
        mr_keys: the preprocessed MR images (e.g. t1, flair) an MR-guided model reads, in its channel order.
    """

    def __init__(
        self,
        dataset: StudyFolder,
        inferer: Callable,
        postprocessing: Callable,
        network: Callable,
        output_dir: str | Path,
        device: torch.device | str = "cpu",
        dicom_writer: Callable | None = None,
        overwrite: bool = False,
        progress: bool = True,
        on_study: Callable[[StudyResult], None] | None = None,
        noise_check: Callable[[str, Any], str | None] | None = None,
        dose_input: Callable[..., torch.Tensor] | None = None,
        run_identity: dict[str, Any] | None = None,
        mr_keys: Sequence[str] = (),
    ) -> None:
        self.dataset = dataset
        self.inferer = inferer
        self.postprocessing = postprocessing
        self.network = network
        self.output_dir = Path(output_dir)
        self.device = torch.device(device)
        self.dicom_writer = dicom_writer
        self.overwrite = overwrite
        self.progress = progress
        self.on_study = on_study
        self.noise_check = noise_check
        self.dose_input = dose_input
        self.run_identity = run_identity
        self.study_denoiser = StudyDenoiser(inferer, postprocessing, network, device, dose_input, mr_keys)
        self.warnings: dict[str, str] = {}
        self.results: list[StudyResult] = []

    def output_path(self, study: dict[str, Any]) -> Path:
        return self.output_dir / f"{study['name']}_denoised.nii.gz"

    def study_outputs(self, study: dict[str, Any], made_by: dict[str, Any] | None = None) -> StudyOutputs:
        """The outputs the study will have: its NIfTI file and, for DICOM input, its DICOM series folder."""
        names = [self.output_path(study).name]
        if study.get("format") == "dicom" and self.dicom_writer is not None:
            names.append(f"{study['name']}_denoised_dicom")
        return StudyOutputs(self.output_dir, study["name"], names, overwrite=self.overwrite, made_by=made_by)

    def denoise(self, index: int, staging: Path | None = None) -> list[str]:
        """Denoise study `index` and write its outputs into `staging` (default: the output folder); raises on any
        problem."""
        folder = self.output_dir if staging is None else Path(staging)
        study = self.dataset.studies[index]
        data = self.dataset[index]
        warning = self.noise_check(study["name"], data["image"]) if self.noise_check is not None else None
        if warning:
            logger.warning(warning)
            self.warnings[study["name"]] = warning
        result = self.study_denoiser(study["name"], data, study=study)
        outputs = [write_nifti_like(result, folder / self.output_path(study).name, overwrite=self.overwrite)]
        if study.get("format") == "dicom" and self.dicom_writer is not None:
            outputs.append(Path(self.dicom_writer(study, result, folder, self.overwrite)))
        return [str(self.output_dir / p.name) for p in outputs]

    def _check_folders(self) -> None:
        """Refuse an output folder equal to or inside the input folder (or the folder of an input file): inputs are
        never modified, and outputs are never taken as studies."""
        if getattr(self.dataset, "dataset_dir", None) is None:
            return
        source = Path(str(self.dataset.dataset_dir)).resolve()
        inputs = source.parent if source.is_file() else source
        out = self.output_dir.resolve()
        if out == inputs or inputs in out.parents:
            raise InputDataError(
                f"setting output_dir: {self.output_dir} is inside the input folder {inputs}; choose an output folder "
                "outside it (inputs are never modified)"
            )

    def _process(self, index: int, study: dict[str, Any]) -> StudyResult:
        """One study: skipped when its outputs are complete, else denoised into staging and published together."""
        start = time.perf_counter()
        try:
            made_by = None if self.run_identity is None else study_identity(study, self.run_identity)
            outputs = self.study_outputs(study, made_by)
            state = outputs.state()
            if state == "complete" and not self.overwrite:
                differ = [] if made_by is None else identity_differences(outputs.recorded_identity(), made_by)
                if not differ:
                    return StudyResult(
                        study["name"], "skipped", 0.0, [], "complete outputs exist (set overwrite to redo)"
                    )
                return StudyResult(
                    study["name"],
                    "failed",
                    0.0,
                    [],
                    f"complete outputs of another run exist: {'; '.join(differ)} differ; set overwrite to redo the "
                    "study with this run's settings",
                )
            if state in ("moving", "stale"):
                logger.warning(
                    "study %s: the outputs of an earlier run are incomplete (%s): denoising it again",
                    study["name"],
                    state,
                )
            with outputs.staged() as staging:
                written = self.denoise(index, staging)
                used = getattr(self.dose_input, "used", {}).get(study["name"])
                if used is not None and outputs.made_by is not None:
                    outputs.made_by = dict(outputs.made_by, dose_used=used)
                weight = self.study_denoiser.detail_weights.get(study["name"])
                if weight is not None and outputs.made_by is not None:
                    outputs.made_by = dict(outputs.made_by, detail_weight=round(weight, 4))
                focus = self.study_denoiser.hot_focus_ml.get(study["name"])
                if focus is not None and outputs.made_by is not None:
                    outputs.made_by = dict(outputs.made_by, hot_focus_ml=round(focus, 2))
            return StudyResult(study["name"], "ok", time.perf_counter() - start, written)
        except Exception as exc:  # noqa: BLE001 - one bad study must not stop the batch
            logger.debug("study %s failed", study["name"], exc_info=exc)
            return StudyResult(study["name"], "failed", time.perf_counter() - start, [], one_line(root_cause(exc)))

    def run(self) -> list[StudyResult]:
        """Process every study, print a summary, and exit non-zero when any study failed; holds the output folder's
        lock (one writer per folder) throughout."""
        if self.dose_input is not None and hasattr(self.dose_input, "check"):
            self.dose_input.check()  # a dose-conditioned model without a DRF: refused before anything is read
        studies = self.dataset.studies  # the input is checked (and listed) first
        self._check_folders()
        ensure_writable_dir(self.output_dir, "setting output_dir")
        with OutputFolderLock(self.output_dir):
            return self._run_locked(studies)

    def _run_locked(self, studies: list[dict[str, Any]]) -> list[StudyResult]:
        from tqdm.auto import tqdm

        for stale in clean_stale_staging(self.output_dir):
            logger.info("removed %s, left by an interrupted run", stale)
        self.results, self.warnings = [], {}
        skipped = getattr(self.dataset, "skipped", [])
        self.results += [StudyResult(path, "skipped", 0.0, [], reason) for path, reason in skipped]
        current = None
        try:
            for index, study in enumerate(tqdm(studies, desc="denoising", unit="study", disable=not self.progress)):
                current = study["name"]
                self.results.append(self._process(index, study))
                current = None
                gc.collect()
                if self.on_study is not None:
                    self.on_study(self.results[-1])
        except KeyboardInterrupt:
            if current is not None:
                self.results.append(StudyResult(current, "failed", 0.0, [], "interrupted: nothing of it was written"))
            self._summary()
            print("error: interrupted", file=sys.stderr, flush=True)
            raise SystemExit(130) from None
        self._summary()
        failed = [r for r in self.results if r.status == "failed"]
        if failed:
            raise SystemExit(1)
        return self.results

    def _summary(self) -> None:
        ok = [r for r in self.results if r.status == "ok"]
        lines = [
            f"inference: {len(ok)} denoised, {sum(r.status == 'skipped' for r in self.results)} skipped, "
            f"{sum(r.status == 'failed' for r in self.results)} failed, output in {self.output_dir}"
        ]
        for r in self.results:
            detail = ", ".join(r.outputs) if r.status == "ok" else r.message
            used = getattr(self.dose_input, "used", {}).get(r.name) if r.status == "ok" else None
            if used is not None:
                detail += f" (DRF {used['drf']:g}, {used['source']})"
            weight = self.study_denoiser.detail_weights.get(r.name) if r.status == "ok" else None
            if weight is not None and weight < 1.0:
                detail += f" (study-wide sub-grid detail gain {weight:.2f})"
            focus = self.study_denoiser.hot_focus_ml.get(r.name) if r.status == "ok" else None
            if focus is not None:
                detail += f" (hot foci given their counts back: {focus:.2f} mL)"
            if r.name in self.warnings:
                detail += f" (warning: {self.warnings[r.name]})"
            lines.append(f"  {r.status:7s} {r.name} ({r.seconds:.1f} s): {detail}")
        print("\n".join(lines), flush=True)
