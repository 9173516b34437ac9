"""Near-copies moved by a few voxels or turned by a few degrees, for the fold-isolation check.

`fingerprint.similarity` compares block means voxel for voxel (over the axis flips and the in-plane transpose), so a
copy of a test subject shifted by 2-3 voxels or rotated by 5 degrees falls to the correlation of two different
subjects and passes. Here the candidate's coarse fingerprint (8 mm block means, smoothed by one block) is first
moved so that its intensity centroid lands on the other's, then turned about each axis over a small grid of angles
and shifted by up to one block, keeping the best Pearson correlation; a rigid copy comes back above
`RIGID_DUPLICATE_CORRELATION`, different subjects stay below it (measured in docs/reliability.md).
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

__all__ = ["ANGLES_DEG", "BLOCK_MM", "RIGID_DUPLICATE_CORRELATION", "coarse_fingerprint", "rigid_similarity"]

RIGID_DUPLICATE_CORRELATION = 0.995
ANGLES_DEG = (-8.0, -6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0, 8.0)
_AXES = ((0, 1), (0, 2), (1, 2))  # the rotation planes: about z, y and x


BLOCK_MM = 8.0  # the coarse fingerprint's block edge


@lru_cache(maxsize=256)
def _coarse(path: str, mtime_ns: int, size: int) -> np.ndarray:
    from monai.transforms import LoadImage

    from ..errors import InputDataError

    try:
        image = LoadImage(image_only=True)(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise InputDataError(f"{path}: cannot be read as an image ({type(exc).__name__})") from exc
    array = np.squeeze(np.asarray(image, dtype=np.float32))
    if array.ndim != 3 or min(array.shape) < 4:
        return np.zeros((0, 0, 0), np.float32)
    zooms = np.linalg.norm(np.asarray(image.affine, dtype=float)[:3, :3], axis=0)
    block = [max(1, int(round(BLOCK_MM / z))) if z > 0 else 1 for z in zooms]
    even = [n - n % b for n, b in zip(array.shape, block)]
    array = array[: even[0], : even[1], : even[2]]
    shape = (even[0] // block[0], block[0], even[1] // block[1], block[1], even[2] // block[2], block[2])
    blocks = array.reshape(shape).mean(axis=(1, 3, 5))
    return ndimage.gaussian_filter(blocks, 1.0).astype(np.float32)


def coarse_fingerprint(path: str | Path) -> np.ndarray:
    """Block means over `BLOCK_MM` blocks, smoothed by one block (cached by file identity)."""
    stat = Path(path).stat()
    return _coarse(str(path), stat.st_mtime_ns, stat.st_size)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def _centroid(volume: np.ndarray) -> np.ndarray:
    weights = np.clip(volume, 0, None)
    total = float(weights.sum())
    if total <= 0:
        return (np.asarray(volume.shape) - 1) / 2.0
    return np.asarray(ndimage.center_of_mass(weights))


def _orientations(b: np.ndarray, shape: tuple[int, ...]) -> list[np.ndarray]:
    out = []
    for axes in ((0, 1, 2), (1, 0, 2)):
        candidate = np.transpose(b, axes)
        if candidate.shape == shape:
            for flips in itertools.product((False, True), repeat=3):
                out.append(candidate[tuple(slice(None, None, -1) if f else slice(None) for f in flips)])
    return out


def _aligned(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`b` shifted so that its intensity centroid lands on `a`'s."""
    return ndimage.shift(b, _centroid(a) - _centroid(b), order=1, mode="nearest")


def rigid_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The best Pearson correlation of coarse fingerprint `b` with `a` after a rigid alignment: `b`'s orientation
    (axis flips, in-plane transpose) that correlates best once centroid-aligned, turned by up to 8 degrees about
    each axis (2 degree steps, re-aligned after each turn), then shifted by up to one block (0 when no flip or
    transpose of `b` has the shape of `a`)."""
    if a.size == 0 or b.size == 0:
        return 0.0
    candidates = [_aligned(a, o) for o in _orientations(b, a.shape)]
    if not candidates:
        return 0.0
    best_value, best = max((_pearson(a, c), k) for k, c in enumerate(candidates))
    base = candidates[best]
    turned_best = base
    for plane in _AXES:
        for angle in ANGLES_DEG:
            if angle == 0:
                continue
            turned = _aligned(a, ndimage.rotate(base, angle, plane, reshape=False, order=1, mode="nearest"))
            value = _pearson(a, turned)
            if value > best_value:
                best_value, turned_best = value, turned
    for shift in itertools.product((-0.5, 0.0, 0.5), repeat=3):
        if shift != (0.0, 0.0, 0.0):
            best_value = max(best_value, _pearson(a, ndimage.shift(turned_best, shift, order=1, mode="nearest")))
    return best_value
