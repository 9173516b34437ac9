"""Lesions inserted into a subject's activity and T1: the legacy glioblastoma-like lesion, and the mix that a
quantification study needs (hot solid nodules, ring-enhancing lesions, PET-only lesions without a T1 signature, cold
hypometabolic regions), each labelled with its own integer in the lesion map and described in the manifest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from .presets import Geometry
from .random_fields import smooth_field

__all__ = [
    "LESION_KINDS",
    "RICH_LESIONS",
    "LesionContext",
    "RichLesionRecipe",
    "add_lesion_mix",
    "add_lesion_rich",
    "add_ring_enhancing",
    "place_lesion",
]

# kind -> diameter range in mm
LESION_KINDS: dict[str, tuple[float, float]] = {
    "hot_nodule": (6.0, 20.0),  # solid, partial-volume sized; visible on T1
    "ring_enhancing": (15.0, 40.0),  # hot rim around a necrotic core (glioblastoma-like)
    "pet_only": (6.0, 20.0),  # hot, no T1 signature: an MR-guided model must not erase it
    "cold": (15.0, 30.0),  # hypometabolic region, no T1 signature
}
GAP_MM = 5.0  # lesions of the mix are at least this far apart
HOT_TO_GM = (1.5, 3.0)  # the mix's hot nodules and PET-only lesions, times grey matter
COLD_FACTOR = (0.3, 0.6)  # a cold region's uptake, times the local uptake


@dataclass(frozen=True)
class RichLesionRecipe:
    """The lesion-rich training recipe: many hot lesions, small and faint ones among them, so that a training
    objective sees enough lesion voxels to learn to keep their uptake (the test cohorts keep the 'mix' recipe)."""

    hot_count: tuple[int, int] = (4, 8)  # hot lesions per subject, inclusive
    cold_count: tuple[int, int] = (0, 1)
    hot_kind_weights: tuple[tuple[str, float], ...] = (("hot_nodule", 0.4), ("pet_only", 0.4), ("ring_enhancing", 0.2))
    solid_diameter_mm: tuple[float, float] = (5.0, 20.0)
    ring_diameter_mm: tuple[float, float] = (12.0, 30.0)
    hot_to_gm: tuple[float, float] = (1.5, 4.0)


RICH_LESIONS = RichLesionRecipe()


@dataclass
class LesionContext:
    """The subject being built: arrays modified in place and the values lesions are scaled by."""

    act: np.ndarray
    t1: np.ndarray
    lesion: np.ndarray
    tissue_mask: np.ndarray
    inside_dist: np.ndarray
    geometry: Geometry
    tissue: Any  # TissueModel
    gm_act: float
    wm_act: float
    t1_wm: float


def place_lesion(ctx: LesionContext, diameter: float, rng: np.random.Generator, roughness: float, keep_apart: bool):
    """A centre in tissue at least half a radius inside the brain, its box and normalised radius map `rho`."""
    vox = np.asarray(ctx.geometry.voxel_size_mm)
    radius = diameter / 2.0
    allowed = ctx.tissue_mask & (ctx.inside_dist >= max(0.5 * radius, 4.0)) & (ctx.lesion == 0)
    if keep_apart and ctx.lesion.any():
        allowed &= ndimage.distance_transform_edt(ctx.lesion == 0, sampling=vox) >= radius + GAP_MM
    candidates = np.argwhere(allowed)
    if len(candidates) == 0:
        candidates = np.argwhere(ctx.tissue_mask)
    centre = candidates[rng.integers(len(candidates))]
    half = np.ceil(1.6 * radius / vox).astype(int) + 1
    lo = np.maximum(centre - half, 0)
    hi = np.minimum(centre + half + 1, ctx.act.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    sub_shape = tuple(int(b - a) for a, b in zip(lo, hi))
    grids = np.meshgrid(*[(np.arange(a, b) - c) * v for a, b, c, v in zip(lo, hi, centre, vox)], indexing="ij")
    rho = np.sqrt(sum(g**2 for g in grids)) / radius
    rho = rho + roughness * smooth_field(sub_shape, ctx.geometry.voxel_size_mm, max(0.6 * radius, 3.0), rng)
    return centre, box, rho, ctx.inside_dist[box] > 0


def add_ring_enhancing(
    ctx: LesionContext,
    rng: np.random.Generator,
    labels: tuple[int, int] = (1, 2),
    diameter_mm: tuple[float, float] | None = None,
    keep_apart: bool = False,
) -> dict:
    """Insert one glioblastoma-like lesion (hot enhancing rim, necrotic core, hypometabolic oedema) in place, its rim
    and core labelled `labels`; returns its description."""
    tissue = ctx.tissue
    diameter = rng.uniform(*(diameter_mm or tissue.lesion_diameter_mm))
    centre, box, rho, in_brain = place_lesion(ctx, diameter, rng, 0.15, keep_apart)
    core_fraction = rng.uniform(*tissue.lesion_core_fraction)
    whole = (rho < 1.0) & in_brain
    core = (rho < core_fraction) & in_brain
    rim = whole & ~core
    oedema = (rho >= 1.0) & (rho < 1.5) & in_brain
    rim_ratio = rng.uniform(*tissue.lesion_rim_to_gm)
    core_ratio = rng.uniform(*tissue.lesion_core_to_wm)
    a = ctx.act[box]
    a[oedema] *= tissue.oedema_factor
    a[rim] = rim_ratio * ctx.gm_act
    a[core] = core_ratio * ctx.wm_act
    t = ctx.t1[box]
    t[oedema] *= 0.9
    t[rim] = 0.65 * ctx.t1_wm
    t[core] = 0.35 * ctx.t1_wm
    lab = ctx.lesion[box]
    lab[rim] = labels[0]
    lab[core] = labels[1]
    return {
        "centre_voxel": centre.tolist(),
        "diameter_mm": round(float(diameter), 2),
        "core_fraction": round(float(core_fraction), 3),
        "rim_to_gm": round(float(rim_ratio), 3),
        "core_to_wm": round(float(core_ratio), 3),
        "voxels": int(whole.sum()),
    }


def _add_solid(
    ctx: LesionContext,
    kind: str,
    label: int,
    rng: np.random.Generator,
    diameter_mm: tuple[float, float] | None = None,
    hot_to_gm: tuple[float, float] = HOT_TO_GM,
) -> dict:
    """A hot nodule, a PET-only hot lesion or a cold region, labelled `label`."""
    diameter = rng.uniform(*(diameter_mm or LESION_KINDS[kind]))
    centre, box, rho, in_brain = place_lesion(ctx, diameter, rng, 0.1, keep_apart=True)
    region = (rho < 1.0) & in_brain & (ctx.lesion[box] == 0)
    a = ctx.act[box]
    if kind == "cold":
        ratio = rng.uniform(*COLD_FACTOR)
        a[region] *= ratio
        described = {"uptake_factor": round(float(ratio), 3)}
    else:
        ratio = rng.uniform(*hot_to_gm)
        a[region] = ratio * ctx.gm_act
        described = {"to_gm": round(float(ratio), 3)}
        if kind == "hot_nodule":
            ctx.t1[box][region] = 0.75 * ctx.t1_wm
    ctx.lesion[box][region] = label
    return {
        "centre_voxel": centre.tolist(),
        "diameter_mm": round(float(diameter), 2),
        **described,
        "voxels": int(region.sum()),
    }


def add_lesion_mix(ctx: LesionContext, rng: np.random.Generator, max_lesions: int = 4) -> list[dict]:
    """1 to `max_lesions` lesions of distinct kinds, at least GAP_MM apart, lesion k labelled k in the lesion map."""
    count = int(rng.integers(1, max_lesions + 1))
    kinds = [list(LESION_KINDS)[i] for i in rng.permutation(len(LESION_KINDS))[:count]]
    out = []
    for label, kind in enumerate(kinds, start=1):
        if kind == "ring_enhancing":
            described = add_ring_enhancing(ctx, rng, (label, label), LESION_KINDS[kind], keep_apart=True)
        else:
            described = _add_solid(ctx, kind, label, rng)
        out.append({"label": label, "kind": kind, **described})
    return out


def add_lesion_rich(
    ctx: LesionContext, rng: np.random.Generator, recipe: RichLesionRecipe = RICH_LESIONS
) -> list[dict]:
    """The lesion-rich recipe (`RichLesionRecipe`): hot lesions of the kinds and sizes it names, then its cold regions,
    at least GAP_MM apart where the brain has room, lesion k labelled k in the lesion map."""
    hot = int(rng.integers(recipe.hot_count[0], recipe.hot_count[1] + 1))
    cold = int(rng.integers(recipe.cold_count[0], recipe.cold_count[1] + 1))
    names = [k for k, _ in recipe.hot_kind_weights]
    weights = np.asarray([w for _, w in recipe.hot_kind_weights], dtype=float)
    kinds = list(rng.choice(names, size=hot, p=weights / weights.sum())) + ["cold"] * cold
    out: list[dict] = []
    for kind in kinds:
        label = len(out) + 1
        if kind == "ring_enhancing":
            described = add_ring_enhancing(ctx, rng, (label, label), recipe.ring_diameter_mm, keep_apart=True)
        elif kind == "cold":
            described = _add_solid(ctx, kind, label, rng)
        else:
            described = _add_solid(ctx, kind, label, rng, recipe.solid_diameter_mm, recipe.hot_to_gm)
        if described["voxels"] > 0:  # a small brain may have no free tissue left; that lesion is not drawn
            out.append({"label": label, "kind": str(kind), **described})
    return out
