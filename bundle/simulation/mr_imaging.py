"""MR that looks like MR: a subject's T1 and a FLAIR-like second contrast as a scanner would give them, beside its PET.

The phantom's T1 (`phantom.make_subject`) is the MNI152 template warped with the subject and painted with its lesions:
noise-free, bias-free, of one contrast, and exactly aligned with the PET. `simulate_mr` turns it, per subject, into
what an MR-guided model meets in practice, each effect drawn from `MR_RANGES` with the subject's own generator:

1. a FLAIR-like contrast from the tissue map (CSF suppressed, grey matter brighter than white), in which a ring
   lesion's oedema is the brightest tissue and a hot nodule shows; PET-only foci and cold lesions have no MR signature;
2. MR-only lesions (`mr_only`: dark on T1, bright on FLAIR, normal PET uptake), labelled in the lesion map after the
   PET's own lesions, so an evaluation can check that no uptake is invented there;
3. a per-subject T1 contrast (a power law about the white-matter level: grey/white contrast varies between scanners
   and sequences);
4. the MR's own resolution (a Gaussian of 1-1.5 mm FWHM; the volumes stay on the PET's grid, where the PET's
   resolution is several mm);
5. PET-MR misregistration: a rigid motion of the MR about the grid's centre, up to 2 mm and 2 degrees (the PET and
   the lesion map stay where they are);
6. a smooth multiplicative receive-coil bias field (log-normal, correlated over about 12 cm);
7. Rician noise (the magnitude of complex Gaussian noise), its SD set by a drawn white-matter SNR.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from ..resolution import fwhm_to_sigma
from .lesions import LesionContext, place_lesion
from .presets import Geometry
from .random_fields import smooth_field

__all__ = [
    "FLAIR_LEVELS",
    "MR_RANGES",
    "MRDraw",
    "MRSubject",
    "add_mr_only_lesions",
    "draw_mr",
    "ideal_flair",
    "misregister",
    "rician",
    "rigid_displacement_rms_mm",
    "simulate_mr",
]

GREY_MATTER, WHITE_MATTER, CSF = 1, 2, 3  # the tissue map's labels (phantom.py)

MR_RANGES: dict[str, tuple[float, float]] = {
    "t1_snr": (15.0, 40.0),  # white-matter signal over the Rician noise SD
    "flair_snr": (10.0, 25.0),
    "resolution_fwhm_mm": (1.0, 1.5),
    "bias_field_sd": (0.03, 0.12),  # SD of the log of the bias field
    "t1_gamma": (0.8, 1.25),  # T1 contrast: t1_wm x (t1 / t1_wm) ** gamma
    "flair_gm_to_wm": (1.15, 1.35),
    "shift_mm": (0.0, 2.0),  # length of the MR's translation from the PET
    "rotation_deg": (0.0, 2.0),  # angle of its rotation about the grid's centre
    "mr_only_lesions": (1.0, 2.0),  # how many MR-only lesions (integers, both ends included)
}
BIAS_CORRELATION_MM = 120.0
MR_ONLY_DIAMETER_MM = (6.0, 20.0)
MR_ONLY_T1 = 0.7  # of white matter: hypointense on T1
OEDEMA_REACH = 0.25  # a ring lesion's oedema reaches this fraction of its diameter beyond it (phantom: rho 1-1.5)

# FLAIR intensity by tissue and lesion kind, relative to white matter
FLAIR_LEVELS: dict[str, float] = {
    "csf": 0.15,
    "outside_brain": 0.6,  # of the T1's relative intensity there (scalp bright, skull and CSF dark)
    "oedema": 1.9,
    "ring_enhancing": 1.5,
    "enhancing_rim": 1.5,
    "necrotic_core": 1.3,
    "hot_nodule": 1.4,
    "mr_only": 1.8,
}
MR_SCALE = 1000.0  # white matter's MR intensity


@dataclass(frozen=True)
class MRDraw:
    """One subject's MR acquisition: SNRs, resolution, bias field, T1 contrast, FLAIR contrast and the MR's rigid
    motion from the PET (translation in mm, rotation vector in degrees, about the grid's centre)."""

    t1_snr: float
    flair_snr: float
    resolution_fwhm_mm: float
    bias_field_sd: float
    t1_gamma: float
    flair_gm_to_wm: float
    translation_mm: tuple[float, float, float]
    rotation_vector_deg: tuple[float, float, float]
    mr_only_lesions: int

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


@dataclass
class MRSubject:
    """A subject's simulated MR on the PET's grid, its lesion map with the MR-only lesions added, and their record."""

    t1: np.ndarray
    flair: np.ndarray
    lesion_mask: np.ndarray
    lesion_kinds: dict[str, str]
    record: dict


def _direction(rng: np.random.Generator) -> np.ndarray:
    vector = rng.normal(size=3)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def draw_mr(rng: np.random.Generator, ranges: Mapping[str, tuple[float, float]] = MR_RANGES) -> MRDraw:
    """One subject's MR acquisition, every value uniform in its range; the motion's direction and axis uniform."""
    values = {key: float(rng.uniform(*ranges[key])) for key in ranges if key != "mr_only_lesions"}
    lo, hi = ranges["mr_only_lesions"]
    translation = _direction(rng) * values.pop("shift_mm")
    rotation = _direction(rng) * values.pop("rotation_deg")
    return MRDraw(
        **values,
        translation_mm=tuple(round(float(v), 4) for v in translation),
        rotation_vector_deg=tuple(round(float(v), 4) for v in rotation),
        mr_only_lesions=int(rng.integers(int(lo), int(hi) + 1)),
    )


def _partial_volumes(tissue: np.ndarray, brain: np.ndarray) -> dict[str, np.ndarray]:
    """Grey, white and CSF fractions inside the brain from the dominant-class tissue map, smoothed over half a voxel;
    a brain voxel without a class (a lesion, a mixed voxel) takes its nearest classified voxel's."""
    missing = tissue == 0
    if missing.all():
        raise ValueError("the tissue map has no grey matter, white matter or CSF")
    nearest = ndimage.distance_transform_edt(missing, return_distances=False, return_indices=True)
    filled = tissue[tuple(nearest)]
    smoothed = {
        name: ndimage.gaussian_filter((filled == label).astype(np.float32), 0.5)
        for name, label in (("gm", GREY_MATTER), ("wm", WHITE_MATTER), ("csf", CSF))
    }
    total = np.maximum(sum(smoothed.values()), 1e-6)
    return {name: np.where(brain, value / total, 0.0) for name, value in smoothed.items()}


def ideal_flair(
    t1: np.ndarray,
    tissue: np.ndarray,
    brain: np.ndarray,
    lesion: np.ndarray,
    kinds: Mapping[str, str],
    voxel_size_mm: Sequence[float],
    gm_to_wm: float,
) -> np.ndarray:
    """A noise-free FLAIR-like image on the T1's grid: tissue levels of `FLAIR_LEVELS` (grey matter `gm_to_wm`),
    lesions by kind (`kinds`: label -> kind; kinds not in `FLAIR_LEVELS` have no MR signature), and oedema around
    every ring lesion reaching `OEDEMA_REACH` of its diameter (that of a sphere of its volume), or one voxel."""
    brain = brain > 0
    fractions = _partial_volumes(tissue, brain)
    level = gm_to_wm * fractions["gm"] + fractions["wm"] + FLAIR_LEVELS["csf"] * fractions["csf"]
    t1_wm = float(np.median(t1[tissue == WHITE_MATTER])) if np.any(tissue == WHITE_MATTER) else float(t1.max())
    flair = np.where(brain, level, FLAIR_LEVELS["outside_brain"] * t1 / max(t1_wm, 1e-6)).astype(np.float32)
    vox = np.asarray(voxel_size_mm, dtype=np.float64)
    cores = [int(label) for label, kind in kinds.items() if kind == "necrotic_core"]
    for label, kind in kinds.items():
        region = lesion == int(label)
        if not region.any():
            continue
        if kind in ("ring_enhancing", "enhancing_rim"):
            whole = region | np.isin(lesion, cores) if kind == "enhancing_rim" else region
            diameter = float((6.0 * whole.sum() * float(np.prod(vox)) / np.pi) ** (1.0 / 3.0))
            distance = ndimage.distance_transform_edt(~whole, sampling=vox)
            reach = max(OEDEMA_REACH * diameter, float(vox.max()))  # at least one voxel's shell on coarse grids
            oedema = (distance > 0) & (distance <= reach) & brain & (lesion == 0)
            flair[oedema] = FLAIR_LEVELS["oedema"]
        if kind in FLAIR_LEVELS:
            flair[region] = FLAIR_LEVELS[kind]
    return flair * MR_SCALE


def add_mr_only_lesions(
    t1: np.ndarray,
    flair: np.ndarray,
    lesion: np.ndarray,
    tissue: np.ndarray,
    brain: np.ndarray,
    voxel_size_mm: Sequence[float],
    count: int,
    rng: np.random.Generator,
) -> list[dict]:
    """Paint `count` MR-only lesions into `t1` and `flair` and label them in `lesion` (in place, labels after the
    highest one there), each in grey or white matter, clear of the other lesions; returns their descriptions."""
    brain = brain > 0
    t1_wm = float(np.median(t1[tissue == WHITE_MATTER]))
    flair_wm = float(np.median(flair[tissue == WHITE_MATTER]))
    geometry = Geometry("mr", tuple(int(n) for n in t1.shape), tuple(float(v) for v in voxel_size_mm), 1, 1.0)
    context = LesionContext(
        act=t1,
        t1=t1,
        lesion=lesion,
        tissue_mask=brain & np.isin(tissue, (GREY_MATTER, WHITE_MATTER)),
        inside_dist=ndimage.distance_transform_edt(brain, sampling=voxel_size_mm).astype(np.float32),
        geometry=geometry,
        tissue=None,
        gm_act=0.0,
        wm_act=0.0,
        t1_wm=t1_wm,
    )
    described = []
    for _ in range(int(count)):
        label = int(lesion.max()) + 1
        diameter = float(rng.uniform(*MR_ONLY_DIAMETER_MM))
        centre, box, rho, in_brain = place_lesion(context, diameter, rng, 0.1, keep_apart=True)
        region = (rho < 1.0) & in_brain & (lesion[box] == 0)
        t1[box][region] = MR_ONLY_T1 * t1_wm
        flair[box][region] = FLAIR_LEVELS["mr_only"] * flair_wm
        lesion[box][region] = label
        described.append(
            {
                "label": label,
                "kind": "mr_only",
                "centre_voxel": [int(c) for c in centre],
                "diameter_mm": round(diameter, 2),
                "voxels": int(region.sum()),
            }
        )
    return described


def _grid_points_mm(shape: Sequence[int], voxel_size_mm: Sequence[float]) -> list[np.ndarray]:
    """Each voxel's position in mm from the grid's centre, one array per axis."""
    axes = [(np.arange(n) - (n - 1) / 2.0) * float(v) for n, v in zip(shape, voxel_size_mm)]
    return np.meshgrid(*axes, indexing="ij")


def misregister(
    volume: np.ndarray,
    voxel_size_mm: Sequence[float],
    translation_mm: Sequence[float],
    rotation_vector_deg: Sequence[float],
) -> np.ndarray:
    """`volume` moved rigidly: a point x (mm from the grid's centre) goes to R x + t; trilinear, zero outside."""
    rotation = Rotation.from_rotvec(np.asarray(rotation_vector_deg, dtype=np.float64), degrees=True).as_matrix()
    points = np.stack([p.ravel() for p in _grid_points_mm(volume.shape, voxel_size_mm)])
    source = rotation.T @ (points - np.asarray(translation_mm, dtype=np.float64)[:, None])
    vox = np.asarray(voxel_size_mm, dtype=np.float64)[:, None]
    centre = ((np.asarray(volume.shape) - 1) / 2.0)[:, None]
    coordinates = source / vox + centre
    moved = ndimage.map_coordinates(volume.astype(np.float32), coordinates, order=1, mode="constant", cval=0.0)
    return moved.reshape(volume.shape).astype(np.float32)


def rigid_displacement_rms_mm(
    region: np.ndarray,
    voxel_size_mm: Sequence[float],
    translation_mm: Sequence[float],
    rotation_vector_deg: Sequence[float],
) -> float:
    """RMS over `region`'s voxels of how far the motion x -> R x + t moves them (mm)."""
    rotation = Rotation.from_rotvec(np.asarray(rotation_vector_deg, dtype=np.float64), degrees=True).as_matrix()
    points = np.stack([p[region > 0] for p in _grid_points_mm(region.shape, voxel_size_mm)])
    moved = rotation @ points + np.asarray(translation_mm, dtype=np.float64)[:, None]
    return float(np.sqrt(np.mean(np.sum((moved - points) ** 2, axis=0))))


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """The magnitude of `signal` plus complex Gaussian noise of SD `sigma` in each of its real and imaginary parts."""
    real = signal + rng.normal(0.0, sigma, signal.shape)
    imaginary = rng.normal(0.0, sigma, signal.shape)
    return np.hypot(real, imaginary).astype(np.float32)


def simulate_mr(
    t1_ideal: np.ndarray,
    tissue: np.ndarray,
    brain: np.ndarray,
    lesion: np.ndarray,
    kinds: Mapping[str, str],
    voxel_size_mm: Sequence[float],
    rng: np.random.Generator,
    ranges: Mapping[str, tuple[float, float]] = MR_RANGES,
) -> MRSubject:
    """A subject's T1 and FLAIR as acquired (module docstring, steps 1-7), from its noise-free phantom T1, tissue map,
    brain mask and lesion map (`kinds`: label -> kind), all on the PET's grid; `rng` is used for nothing else."""
    draw = draw_mr(rng, ranges)
    t1 = t1_ideal.astype(np.float32).copy()
    flair = ideal_flair(t1, tissue, brain, lesion, kinds, voxel_size_mm, draw.flair_gm_to_wm)
    lesion_out = lesion.copy()
    added = add_mr_only_lesions(t1, flair, lesion_out, tissue, brain, voxel_size_mm, draw.mr_only_lesions, rng)
    t1_wm = float(np.median(t1_ideal[tissue == WHITE_MATTER]))
    t1 = (MR_SCALE * np.clip(t1 / t1_wm, 0.0, None) ** draw.t1_gamma).astype(np.float32)
    sigma = [fwhm_to_sigma(draw.resolution_fwhm_mm) / float(v) for v in voxel_size_mm]
    bias_log = smooth_field(tuple(t1.shape), tuple(voxel_size_mm), BIAS_CORRELATION_MM, rng)
    bias = np.exp(draw.bias_field_sd * bias_log).astype(np.float32)
    acquired = {}
    for name, image, snr in (("t1", t1, draw.t1_snr), ("flair", flair, draw.flair_snr)):
        blurred = ndimage.gaussian_filter(image, sigma)
        moved = misregister(blurred, voxel_size_mm, draw.translation_mm, draw.rotation_vector_deg) * bias
        acquired[name] = rician(moved, MR_SCALE / snr, rng)
    record = {
        "draw": draw.as_dict(),
        "misregistration_rms_mm": round(
            rigid_displacement_rms_mm(brain, voxel_size_mm, draw.translation_mm, draw.rotation_vector_deg), 4
        ),
        "mr_only_lesions": added,
    }
    all_kinds = {**{str(k): v for k, v in kinds.items()}, **{str(x["label"]): "mr_only" for x in added}}
    return MRSubject(acquired["t1"], acquired["flair"], lesion_out, all_kinds, record)
