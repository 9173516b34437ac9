"""Near-duplicate volumes, for the fold-isolation check: a copy of the test subject with a few voxels changed, in
other units (rescaled or offset) or flipped along any axis (or transposed in-plane) is still the test subject.

A volume's fingerprint is its 2 x 2 x 2 block means (every axis cut to an even length), centred and scaled to unit
norm; two volumes are near-duplicates when the Pearson correlation of their fingerprints, maximised over the 8 axis
flips and the in-plane transpose, reaches `DUPLICATE_CORRELATION`. On the default dataset, different subjects (one
template under warps) correlate at most 0.92; an edited, rescaled or flipped copy correlates above 0.9999.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import InputDataError

__all__ = ["DUPLICATE_CORRELATION", "fingerprint", "similarity"]

DUPLICATE_CORRELATION = 0.99


@lru_cache(maxsize=256)
def _fingerprint(path: str, mtime_ns: int, size: int) -> np.ndarray:
    from monai.transforms import LoadImage

    try:
        array = np.asarray(LoadImage(image_only=True)(path), dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise InputDataError(f"{path}: cannot be read as an image ({type(exc).__name__})") from exc
    array = np.squeeze(array)
    if array.ndim != 3 or min(array.shape) < 2:
        return np.zeros(0, np.float32)
    even = [n - n % 2 for n in array.shape]
    array = array[: even[0], : even[1], : even[2]]
    blocks = array.reshape(even[0] // 2, 2, even[1] // 2, 2, even[2] // 2, 2).mean(axis=(1, 3, 5))
    centred = blocks - blocks.mean()
    norm = float(np.linalg.norm(centred))
    return centred / norm if norm > 0 else np.zeros_like(centred)


def fingerprint(path: str | Path) -> np.ndarray:
    """The unit-norm, zero-mean 2 x 2 x 2 block means of a volume (cached by file identity)."""
    stat = Path(path).stat()
    return _fingerprint(str(path), stat.st_mtime_ns, stat.st_size)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The highest Pearson correlation of two fingerprints over the axis flips and in-plane transpose of `b` (0 when
    no flip or transpose of `b` has the shape of `a`)."""
    best = 0.0
    if a.size == 0 or b.size == 0:
        return best
    for axes in ((0, 1, 2), (1, 0, 2)):
        candidate = np.transpose(b, axes)
        if candidate.shape != a.shape:
            continue
        for flips in itertools.product((False, True), repeat=3):
            flipped = candidate[tuple(slice(None, None, -1) if f else slice(None) for f in flips)]
            best = max(best, float(np.sum(a * flipped)))
    return best
