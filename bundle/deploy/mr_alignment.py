"""How far a study's MR is from its PET: a rigid registration with ITK, and the check an MR-guided run makes with it.

An MR-guided network mixes the MR's anatomy into the PET voxel by voxel, so an MR a few millimetres off paints edges
where the PET has none. Before such a model runs, the MR (already on the PET's grid) is registered rigidly to the PET
(ITK's `ImageRegistrationMethodv4`: Mattes mutual information, which does not assume the two modalities' intensities
are related linearly; an Euler 3D transform about the volume's centre; two resolution levels; a fixed sampling seed,
so the same pair gives the same answer). The residual misalignment is the RMS displacement that transform gives the
head's voxels, in mm. `MRAlignmentCheck` warns by study name above `warn_mm` (2 mm) and refuses the study above
`refuse_mm`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..errors import ConfigValueError, InputDataError

__all__ = ["MRAlignment", "MRAlignmentCheck", "alignment_study", "rigid_misalignment"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MRAlignment:
    """The rigid transform from PET to MR space: RMS displacement of the head (mm), translation (mm), rotation (deg)."""

    rms_mm: float
    translation_mm: tuple[float, float, float]
    rotation_deg: tuple[float, float, float]


def _itk_image(volume: np.ndarray, spacing_mm: Sequence[float]):
    """An ITK float image of an (X, Y, Z) array (ITK's arrays are (Z, Y, X)) with its voxel size."""
    import itk

    image = itk.image_from_array(np.ascontiguousarray(np.transpose(volume.astype(np.float32), (2, 1, 0))))
    image.SetSpacing([float(s) for s in spacing_mm])
    return image


def rigid_misalignment(
    pet: np.ndarray, mr: np.ndarray, spacing_mm: Sequence[float], head_fraction: float = 0.2, seed: int = 7
) -> MRAlignment:
    """Register the MR to the PET (both (X, Y, Z) on the same grid) rigidly; the residual misalignment over the
    PET's head (voxels above `head_fraction` of its maximum)."""
    import itk

    if pet.shape != mr.shape:
        raise InputDataError(f"MR alignment: the MR {mr.shape} is not on the PET's grid {pet.shape}; resample it first")
    image_type = itk.Image[itk.F, 3]
    fixed, moving = _itk_image(pet, spacing_mm), _itk_image(mr, spacing_mm)
    transform = itk.Euler3DTransform[itk.D].New()
    transform.SetCenter([(n - 1) * float(s) / 2.0 for n, s in zip(pet.shape, spacing_mm)])
    metric = itk.MattesMutualInformationImageToImageMetricv4[image_type, image_type].New()
    metric.SetNumberOfHistogramBins(32)
    optimizer = itk.RegularStepGradientDescentOptimizerv4[itk.D].New()
    optimizer.SetLearningRate(2.0)
    optimizer.SetMinimumStepLength(1e-3)
    optimizer.SetNumberOfIterations(200)
    optimizer.SetRelaxationFactor(0.5)
    scales = itk.RegistrationParameterScalesFromPhysicalShift[type(metric)].New()
    scales.SetMetric(metric)
    optimizer.SetScalesEstimator(scales)
    registration = itk.ImageRegistrationMethodv4[image_type, image_type].New()
    registration.SetFixedImage(fixed)
    registration.SetMovingImage(moving)
    registration.SetMetric(metric)
    registration.SetOptimizer(optimizer)
    registration.SetInitialTransform(transform)
    registration.InPlaceOn()
    registration.SetNumberOfLevels(2)
    registration.SetShrinkFactorsPerLevel([2, 1])
    registration.SetSmoothingSigmasPerLevel([1.0, 0.0])
    registration.SetMetricSamplingPercentage(0.25)
    registration.MetricSamplingReinitializeSeed(seed)
    registration.Update()
    head = np.argwhere(pet > head_fraction * float(pet.max()))
    points = head[:: max(1, len(head) // 4000)] * np.asarray(spacing_mm, dtype=float)
    moved = np.array([transform.TransformPoint([float(v) for v in p]) for p in points])
    parameters = np.asarray(transform.GetParameters(), dtype=float)  # (angle x, y, z in radians, translation x, y, z)
    return MRAlignment(
        rms_mm=float(np.sqrt(np.mean(np.sum((moved - points) ** 2, axis=1)))),
        translation_mm=tuple(float(v) for v in parameters[3:]),
        rotation_deg=tuple(float(v) for v in np.degrees(parameters[:3])),
    )


class MRAlignmentCheck:
    """Called with a study's name, its PET and its MR on the PET's grid: warns by name when their residual
    misalignment is above `warn_mm`, refuses the study (one line) above `refuse_mm`; returns the alignment."""

    def __init__(self, warn_mm: float = 2.0, refuse_mm: float = 4.0) -> None:
        if not 0 < float(warn_mm) <= float(refuse_mm):
            raise ConfigValueError(
                f"setting mr_alignment: expected 0 < warn_mm <= refuse_mm, got warn_mm={warn_mm}, refuse_mm={refuse_mm}"
            )
        self.warn_mm, self.refuse_mm = float(warn_mm), float(refuse_mm)

    def __call__(self, name: str, pet: np.ndarray, mr: np.ndarray, spacing_mm: Sequence[float]) -> MRAlignment:
        alignment = rigid_misalignment(pet, mr, spacing_mm)
        if alignment.rms_mm > self.refuse_mm:
            raise InputDataError(
                f"study {name}: its MR is {alignment.rms_mm:.1f} mm from its PET (limit {self.refuse_mm:g} mm, setting "
                "mr_alignment); register the MR to the PET first"
            )
        if alignment.rms_mm > self.warn_mm:
            logger.warning(
                "study %s: its MR is %.1f mm from its PET (above %g mm); MR anatomy may be misplaced in the output",
                name,
                alignment.rms_mm,
                self.warn_mm,
            )
        return alignment


def alignment_study(
    items: Sequence[dict],
    drf: float,
    shift_mm: float,
    warn_mm: float = 2.0,
    seed: int = 0,
    drawn_mm: Mapping[str, float] | None = None,
) -> list[dict[str, object]]:
    """For each datalist item with a `t1`: the misalignment the check reads between its PET at `drf` and its T1 as
    given (as simulated: aligned), and with the T1 moved by `shift_mm` in a random direction (seeded); whether each is
    flagged (above `warn_mm`); with `drawn_mm` (subject -> the misregistration an MR cohort drew, `simulate_mr`), that
    too, beside what is read."""
    import nibabel as nib
    from scipy import ndimage

    from ..data import at_dose
    from ..io import load_ras_volume

    rng = np.random.default_rng(seed)
    rows = []
    for item in items:
        pet = load_ras_volume(at_dose([item], float(drf))[0]["image"])
        mr_image = nib.as_closest_canonical(nib.load(item["t1"]))  # read once: its voxels and its voxel size
        t1 = np.asarray(mr_image.get_fdata(dtype=np.float32))
        spacing = tuple(float(v) for v in mr_image.header.get_zooms()[:3])
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        moved = ndimage.shift(t1, tuple(direction * float(shift_mm) / np.asarray(spacing)), order=1)
        aligned, shifted = rigid_misalignment(pet, t1, spacing), rigid_misalignment(pet, moved, spacing)
        drawn = {} if drawn_mm is None else {"drawn, mm": round(float(drawn_mm[item["subject"]]), 2)}
        rows.append(
            {
                "subject": item["subject"],
                **drawn,
                "aligned, mm": round(aligned.rms_mm, 2),
                f"moved {shift_mm:g} mm, read as mm": round(shifted.rms_mm, 2),
                "aligned flagged": aligned.rms_mm > warn_mm,
                "moved flagged": shifted.rms_mm > warn_mm,
            }
        )
    return rows
