"""The independent simulator's subjects: MNI152 tissue maps moved by a random affine onto a drawn grid, with its own
activity ratios, a smooth grey-matter modulation and its own lesion recipe."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["IndependentSubject", "make_independent_subject"]

WM_KBQ_ML = 5.0  # white-matter activity, kBq/mL


@dataclass
class IndependentSubject:
    activity: np.ndarray  # kBq/mL on the subject grid (x, y, z)
    mu: np.ndarray  # attenuation, 1/mm
    brain: np.ndarray  # bool
    lesions: np.ndarray  # int labels
    kinds: dict[str, str]  # label -> kind
    voxel_mm: tuple[float, float, float]
    description: dict


def _templates() -> dict[str, np.ndarray]:
    from nilearn import datasets

    return {
        "t1": np.asarray(datasets.load_mni152_template(resolution=1).get_fdata(), np.float32),
        "gm": np.asarray(datasets.load_mni152_gm_template(resolution=1).get_fdata(), np.float32),
        "wm": np.asarray(datasets.load_mni152_wm_template(resolution=1).get_fdata(), np.float32),
        "brain": np.asarray(datasets.load_mni152_brain_mask(resolution=1).get_fdata(), np.float32),
    }


def _to_grid(volume: np.ndarray, matrix: np.ndarray, offset: np.ndarray, shape: tuple, order: int) -> np.ndarray:
    return ndimage.affine_transform(volume, matrix, offset=offset, output_shape=shape, order=order, mode="constant")


def _ball(shape: tuple, centre: np.ndarray, radius_mm: float, voxel: np.ndarray) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    dist2 = sum(((g - c) * v) ** 2 for g, c, v in zip(grids, centre, voxel))
    return dist2 <= radius_mm**2


def make_independent_subject(rng: np.random.Generator) -> IndependentSubject:
    """Draw one subject: grid, pose and size, tissue activities, modulation, lesions and attenuation."""
    t = _templates()
    voxel = np.array([rng.uniform(1.8, 2.8)] * 2 + [rng.uniform(2.4, 3.3)])
    shape = (int(round(230 / voxel[0] / 2)) * 2, int(round(230 / voxel[1] / 2)) * 2, int(round(150 / voxel[2])))
    scale = rng.uniform(0.92, 1.08, 3)
    angle = np.deg2rad(rng.uniform(-6, 6))
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    matrix = rotation @ np.diag(voxel / scale)  # subject voxel index -> template mm (the template is 1 mm)
    template_centre = (np.asarray(t["brain"].shape) - 1) / 2 + np.array([0.0, 12.0, 10.0])  # brain, not neck
    offset = template_centre - matrix @ ((np.asarray(shape) - 1) / 2)
    moved = {k: _to_grid(v, matrix, offset, shape, order=1) for k, v in t.items()}
    brain = moved["brain"] > 0.5
    head = ndimage.binary_fill_holes(moved["t1"] > 0.15 * moved["t1"].max())
    gm, wm = np.clip(moved["gm"], 0, 1), np.clip(moved["wm"], 0, 1)
    gm_ratio = rng.uniform(3.2, 4.6)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 12.0 / voxel)
    field *= 0.12 / max(float(np.abs(field).max()), 1e-6)
    csf = np.clip(brain.astype(np.float32) - gm - wm, 0, 1)
    activity = WM_KBQ_ML * (wm + gm_ratio * gm * (1 + field) + 0.08 * csf)
    activity = np.where(head & ~brain, 0.55 * WM_KBQ_ML, activity).astype(np.float32)
    lesions = np.zeros(shape, np.int16)
    kinds: dict[str, str] = {}
    inside = ndimage.distance_transform_edt(brain, sampling=voxel)
    recipe = [("hot_nodule", rng.uniform(4, 8), rng.uniform(2.0, 3.5)), ("ring_enhancing", rng.uniform(8, 12), 1.8)]
    recipe.append(("cold", rng.uniform(6, 9), 0.3))
    candidates = np.argwhere(inside > 14.0)
    described = []
    for label, (kind, radius, contrast) in enumerate(recipe, start=1):
        for _ in range(50):
            centre = candidates[rng.integers(len(candidates))]
            ball = _ball(shape, centre, radius, voxel)
            if not (lesions[ball] > 0).any() and not (lesions[_ball(shape, centre, radius + 6, voxel)] > 0).any():
                break
        gm_level = WM_KBQ_ML * gm_ratio
        if kind == "ring_enhancing":
            core = _ball(shape, centre, radius - 3.0, voxel)
            activity[ball] = contrast * gm_level
            activity[core] = 0.4 * WM_KBQ_ML
            lesions[ball & ~core] = label
        elif kind == "cold":
            activity[ball] = contrast * WM_KBQ_ML
            lesions[ball] = label
        else:
            activity[ball] = contrast * gm_level
            lesions[ball] = label
        kinds[str(label)] = kind
        described.append({"label": label, "kind": kind, "radius_mm": round(float(radius), 2)})
    mu = np.where(head, 0.0096, 0.0).astype(np.float32)  # 1/mm, soft tissue
    skull = head & ~ndimage.binary_erosion(head, iterations=max(1, int(round(6.0 / voxel[0]))))
    mu[skull] = 0.0140
    description = {
        "voxel_mm": [round(float(v), 3) for v in voxel],
        "shape": list(shape),
        "scale": [round(float(s), 3) for s in scale],
        "rotation_deg": round(float(np.rad2deg(angle)), 2),
        "gm_to_wm": round(float(gm_ratio), 3),
        "lesions": described,
    }
    return IndependentSubject(activity, mu, brain, lesions, kinds, tuple(float(v) for v in voxel), description)
