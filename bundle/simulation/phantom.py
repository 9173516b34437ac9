"""Brain FDG "subjects" built from the MNI152 2009 templates that nilearn ships offline.

Each subject is the template warped by a small random rotation, scaling and smooth deformation (the `varied` anatomy
adds a gyral-scale deformation, head size and shape, and atrophy: `varied_tissue_model`), with:
grey/white-matter activity drawn around 4:1 and modulated by a smooth ~10 % regional field; CSF, skull and
scalp at low uptake; one or more glioblastoma-like lesions (enhancing hot rim around a necrotic core, with
mildly hypometabolic surrounding oedema); an aligned T1-weighted image; a brain mask; a lesion mask
(1 = enhancing rim, 2 = necrotic core); and a 511 keV attenuation map in 1/cm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import ndimage

from .lesions import LesionContext, add_lesion_mix, add_lesion_rich, add_ring_enhancing
from .presets import Geometry
from .random_fields import smooth_field

GREY_MATTER, WHITE_MATTER, CSF = 1, 2, 3

__all__ = ["Subject", "TissueModel", "load_mni_templates", "make_subject", "grid_affine", "varied_tissue_model"]

VARIED_ANATOMY = {
    "gyral_deformation_rms_mm": (5.0, 7.0),
    "gyral_control_spacing_mm": (12.0, 18.0),
    "head_size": (0.88, 1.12),  # global scale; each axis then varies by a further +-5 % (head shape)
    "atrophy": (0.0, 1.0),  # sets ventricle_expansion = 0.3 x atrophy and cortical_loss = 0.6 x atrophy
}
VENTRICLES_MNI_MM = (0.0, -10.0, 15.0)  # centre of the lateral ventricles in MNI space
VENTRICLE_EXPANSION_RADIUS_MM = 25.0
CORTICAL_LOSS_LENGTH_MM = 3.0


@dataclass(frozen=True)
class TissueModel:
    """Activity (relative to white matter), attenuation and anatomy-variation settings."""

    wm_activity_bq_ml: tuple[float, float] = (8500.0, 11500.0)  # FDG white matter, ~SUV 2.5 at 370 MBq
    gm_to_wm: tuple[float, float] = (3.5, 4.5)  # drawn around 4:1
    gm_modulation_sd: float = 0.10  # smooth regional modulation of grey matter
    wm_modulation_sd: float = 0.05
    modulation_correlation_mm: float = 20.0
    csf_to_wm: float = 0.05
    skull_to_wm: float = 0.3
    scalp_to_wm: float = 0.5
    lesion_diameter_mm: tuple[float, float] = (10.0, 40.0)
    lesion_rim_to_gm: tuple[float, float] = (1.3, 1.7)
    lesion_core_to_wm: tuple[float, float] = (0.3, 0.6)
    lesion_core_fraction: tuple[float, float] = (0.4, 0.65)
    oedema_factor: float = 0.8
    n_lesions: int = 1
    mu_soft_tissue_per_cm: float = 0.096
    mu_bone_per_cm: tuple[float, float] = (0.13, 0.15)
    rotation_sd_deg: float = 3.0
    scaling_range: tuple[float, float] = (0.93, 1.07)
    translation_sd_mm: float = 2.0
    deformation_rms_mm: float = 2.5  # per axis
    deformation_control_spacing_mm: float = 30.0
    gyral_deformation_rms_mm: float = 0.0  # a second, gyral-scale deformation: RMS displacement length (0: none)
    gyral_control_spacing_mm: float = 15.0
    ventricle_expansion: float = 0.0  # atrophy: the centre of the brain magnified by up to 1 / (1 - this)
    cortical_loss: float = 0.0  # atrophy: fraction of grey matter lost next to CSF (widens sulci, thins cortex)


def varied_tissue_model(rng: np.random.Generator, base: TissueModel | None = None) -> tuple[TissueModel, dict]:
    """A tissue model with gyral-scale deformation, head size and shape, and atrophy drawn from `VARIED_ANATOMY`;
    returns it and the drawn values (for the manifest)."""
    from dataclasses import replace

    ranges = VARIED_ANATOMY
    drawn = {key: float(rng.uniform(*ranges[key])) for key in ranges}
    size = drawn["head_size"]
    model = replace(
        base or TissueModel(),
        gyral_deformation_rms_mm=drawn["gyral_deformation_rms_mm"],
        gyral_control_spacing_mm=drawn["gyral_control_spacing_mm"],
        scaling_range=(0.95 * size, 1.05 * size),
        ventricle_expansion=0.3 * drawn["atrophy"],
        cortical_loss=0.6 * drawn["atrophy"],
    )
    return model, {key: round(value, 4) for key, value in drawn.items()}


@dataclass
class Subject:
    """One simulated subject on the output grid, arrays indexed (x, y, z) in RAS orientation."""

    subject_id: str
    activity: np.ndarray
    t1: np.ndarray
    brain_mask: np.ndarray
    lesion_mask: np.ndarray
    mu_map: np.ndarray
    affine: np.ndarray
    info: dict = field(default_factory=dict)
    tissue: np.ndarray | None = None  # 1 grey matter, 2 white matter, 3 CSF (dominant class), 0 elsewhere


@lru_cache(maxsize=1)
def load_mni_templates() -> dict[str, np.ndarray]:
    """T1, GM, WM and brain mask of the MNI152 2009 template at 1 mm, plus its affine (cached)."""
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=1)
    out = {
        "t1": np.asarray(t1.get_fdata(), dtype=np.float32),
        "gm": np.asarray(datasets.load_mni152_gm_template(resolution=1).get_fdata(), dtype=np.float32),
        "wm": np.asarray(datasets.load_mni152_wm_template(resolution=1).get_fdata(), dtype=np.float32),
        "brain": np.asarray(datasets.load_mni152_brain_mask(resolution=1).get_fdata(), dtype=np.float32),
        "affine": np.asarray(t1.affine, dtype=np.float64),
    }
    mask = out["brain"] > 0.5
    idx = np.argwhere(mask)
    lo, hi = idx.min(0), idx.max(0)
    centre_vox = (lo + hi) / 2.0
    out["brain_centre_mm"] = (out["affine"] @ np.append(centre_vox, 1.0))[:3]
    return out


def grid_affine(geometry: Geometry) -> np.ndarray:
    """RAS affine of the output grid, centred on the world origin."""
    vox = np.asarray(geometry.voxel_size_mm, dtype=np.float64)
    shape = np.asarray(geometry.shape, dtype=np.float64)
    aff = np.diag(np.append(vox, 1.0))
    aff[:3, 3] = -(shape - 1) / 2.0 * vox
    return aff


def _rotation(angles_rad: np.ndarray) -> np.ndarray:
    ax, ay, az = angles_rad
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _warp_coordinates(geometry: Geometry, tissue: TissueModel, rng: np.random.Generator, mni: dict) -> tuple:
    """Voxel coordinates in the MNI template for every output voxel, and the transform parameters."""
    shape = geometry.shape
    vox = np.asarray(geometry.voxel_size_mm)
    grids = np.meshgrid(*[(np.arange(n) - (n - 1) / 2.0) * v for n, v in zip(shape, vox)], indexing="ij")
    p = np.stack([g.astype(np.float32) for g in grids])  # (3, x, y, z) mm from grid centre

    angles = np.clip(
        rng.normal(0.0, tissue.rotation_sd_deg, 3), -2 * tissue.rotation_sd_deg, 2 * tissue.rotation_sd_deg
    )
    scales = rng.uniform(*tissue.scaling_range, size=3)
    translation = rng.normal(0.0, tissue.translation_sd_mm, 3)
    inv = np.linalg.inv(_rotation(np.deg2rad(angles)) @ np.diag(scales)).astype(np.float32)
    q = np.einsum("ij,j...->i...", inv, p - translation.astype(np.float32)[:, None, None, None])
    for axis in range(3):
        q[axis] += tissue.deformation_rms_mm * smooth_field(
            shape, geometry.voxel_size_mm, tissue.deformation_control_spacing_mm, rng
        )
    if tissue.gyral_deformation_rms_mm > 0:  # RMS of the displacement's length: sqrt(3) times each axis's
        for axis in range(3):
            q[axis] += (
                tissue.gyral_deformation_rms_mm
                / math.sqrt(3.0)
                * smooth_field(shape, geometry.voxel_size_mm, tissue.gyral_control_spacing_mm, rng)
            )
    centre = mni["brain_centre_mm"] + np.array([0.0, 0.0, geometry.axial_offset_mm])
    world = q + centre.astype(np.float32)[:, None, None, None]
    if tissue.ventricle_expansion > 0:  # sample closer to the ventricles' centre: the centre appears magnified
        c = np.asarray(VENTRICLES_MNI_MM, dtype=np.float32)[:, None, None, None]
        r2 = ((world - c) ** 2).sum(0)
        shrink = 1.0 - tissue.ventricle_expansion * np.exp(-r2 / (2 * VENTRICLE_EXPANSION_RADIUS_MM**2))
        world = c + (world - c) * shrink[None].astype(np.float32)
    inv_aff = np.linalg.inv(mni["affine"]).astype(np.float32)
    coords = np.einsum("ij,j...->i...", inv_aff[:3, :3], world) + inv_aff[:3, 3][:, None, None, None]
    params = {
        "rotation_deg": angles.round(3).tolist(),
        "scaling": scales.round(4).tolist(),
        "translation_mm": translation.round(3).tolist(),
    }
    return coords, params


def _shells(brain: np.ndarray, voxel_mm: tuple, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Subarachnoid CSF, skull and scalp as shells at increasing distance from a smoothed brain outline."""
    sigma = [3.0 / v for v in voxel_mm]
    outline = ndimage.gaussian_filter(brain.astype(np.float32), sigma) > 0.25
    dist = ndimage.distance_transform_edt(~outline, sampling=voxel_mm).astype(np.float32)
    csf_t = rng.uniform(1.5, 3.0)
    skull_t = rng.uniform(5.0, 7.5)
    scalp_t = rng.uniform(4.0, 6.5)
    csf = (outline & (brain < 0.5)) | ((dist > 0) & (dist <= csf_t))
    skull = (dist > csf_t) & (dist <= csf_t + skull_t)
    scalp = (dist > csf_t + skull_t) & (dist <= csf_t + skull_t + scalp_t)
    return {"csf": csf, "skull": skull, "scalp": scalp, "thickness_mm": [csf_t, skull_t, scalp_t]}


def make_subject(
    subject_id: str,
    geometry: Geometry,
    rng: np.random.Generator,
    tissue: TissueModel | None = None,
    lesion_rng: np.random.Generator | None = None,
    lesion_recipe: str = "mix",
) -> Subject:
    """Build one subject on `geometry` from the MNI152 templates, using only `rng` for randomness; with `lesion_rng`
    the lesions are drawn from it by `lesion_recipe` (one label per lesion): 'mix' (`lesions.add_lesion_mix`) or
    'rich' (`lesions.add_lesion_rich`); without it the legacy glioblastoma-like lesion (label 1 rim, 2 necrotic
    core)."""
    tissue = tissue or TissueModel()
    mni = load_mni_templates()
    coords, warp_params = _warp_coordinates(geometry, tissue, rng, mni)

    warped = {
        name: ndimage.map_coordinates(mni[name], coords, order=1, mode="constant", cval=0.0, prefilter=False)
        for name in ("gm", "wm", "brain", "t1")
    }
    del coords
    gm, wm = np.clip(warped["gm"], 0, 1), np.clip(warped["wm"], 0, 1)
    total = np.maximum(gm + wm, 1.0)
    gm, wm = gm / total, wm / total
    brain = warped["brain"] > 0.5
    t1_template = warped.pop("t1")
    del warped
    gm *= brain
    wm *= brain
    vox = geometry.voxel_size_mm
    if tissue.cortical_loss > 0:  # atrophy: grey matter next to CSF or outside the brain becomes CSF
        csf_like = ((1.0 - gm - wm) > 0.5) | ~brain
        dist = ndimage.distance_transform_edt(~csf_like, sampling=vox).astype(np.float32)
        gm *= 1.0 - tissue.cortical_loss * np.exp(-dist / CORTICAL_LOSS_LENGTH_MM)
    csf_in = np.clip(1.0 - gm - wm, 0.0, 1.0) * brain
    shells = _shells(brain, vox, rng)
    wm_act = rng.uniform(*tissue.wm_activity_bq_ml)
    ratio = rng.uniform(*tissue.gm_to_wm)
    gm_act = ratio * wm_act
    gm_mod = 1.0 + tissue.gm_modulation_sd * smooth_field(geometry.shape, vox, tissue.modulation_correlation_mm, rng)
    wm_mod = 1.0 + tissue.wm_modulation_sd * smooth_field(geometry.shape, vox, tissue.modulation_correlation_mm, rng)
    act = gm * gm_act * gm_mod + wm * wm_act * wm_mod + csf_in * tissue.csf_to_wm * wm_act
    act += shells["csf"] * (~brain) * tissue.csf_to_wm * wm_act
    act += shells["skull"] * tissue.skull_to_wm * wm_act + shells["scalp"] * tissue.scalp_to_wm * wm_act
    act = np.maximum(act, 0.0).astype(np.float32)

    t1_wm = 1000.0 * float(np.median(t1_template[wm > 0.9])) if np.any(wm > 0.9) else 900.0
    t1 = (1000.0 * t1_template).astype(np.float32)
    t1[shells["csf"] & ~brain] = 0.12 * t1_wm
    t1[shells["skull"]] = 0.15 * t1_wm
    t1[shells["scalp"]] = 0.9 * t1_wm

    lesion = np.zeros(geometry.shape, dtype=np.uint8)
    inside_dist = ndimage.distance_transform_edt(brain, sampling=vox).astype(np.float32)
    tissue_mask = brain & ((gm + wm) > 0.5)
    context = LesionContext(act, t1, lesion, tissue_mask, inside_dist, geometry, tissue, gm_act, wm_act, t1_wm)
    if lesion_rng is None:  # the legacy recipe: glioblastoma-like lesions drawn from the anatomy stream
        lesions = [add_ring_enhancing(context, rng) for _ in range(tissue.n_lesions)]
    else:
        lesions = (add_lesion_rich if lesion_recipe == "rich" else add_lesion_mix)(context, lesion_rng)

    head = brain | shells["csf"] | shells["skull"] | shells["scalp"]
    mu = np.where(head, tissue.mu_soft_tissue_per_cm, 0.0).astype(np.float32)
    mu_bone = rng.uniform(*tissue.mu_bone_per_cm)
    mu[shells["skull"]] = mu_bone

    tissue_map = np.zeros(geometry.shape, dtype=np.uint8)  # the dominant class of each brain voxel (fraction >= 0.5)
    tissue_map[brain & (gm >= 0.5)] = GREY_MATTER
    tissue_map[brain & (wm >= 0.5)] = WHITE_MATTER
    tissue_map[brain & (csf_in >= 0.5)] = CSF
    tissue_map[lesion > 0] = 0

    info = {
        "warp": warp_params,
        "wm_activity_bq_ml": round(float(wm_act), 1),
        "gm_activity_bq_ml": round(float(gm_act), 1),
        "gm_to_wm": round(float(ratio), 3),
        "shell_thickness_mm": [round(float(t), 2) for t in shells["thickness_mm"]],
        "mu_bone_per_cm": round(float(mu_bone), 4),
        "lesions": lesions,
    }
    return Subject(
        subject_id=subject_id,
        activity=act,
        t1=t1,
        brain_mask=brain.astype(np.uint8),
        lesion_mask=lesion,
        mu_map=mu,
        tissue=tissue_map,
        affine=grid_affine(geometry),
        info=info,
    )
