"""Per-fold tuning of baseline parameters on the training subjects only.

`score_grid` computes a method's masked PSNR for every grid point on every case once; `select_parameters`
then picks, for a fold, the grid point with the best mean over that fold's training cases. The test
subject's scores are never consulted by the selection, which is what "tuned on the training subjects"
requires, and each subject is filtered once per grid point instead of once per fold.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import nibabel as nib
import numpy as np

from ..io import read_json, write_json
from ..metrics import masked_psnr

__all__ = ["Case", "load_cases", "score_grid", "select_parameters", "grid_edge_keys", "TunedBaseline"]

logger = logging.getLogger(__name__)


@dataclass
class Case:
    """One subject in RAS voxel order: low dose, full dose, mask and voxel size."""

    subject: str
    low: np.ndarray
    full: np.ndarray
    mask: np.ndarray
    voxel_size_mm: tuple[float, float, float]
    lesion: np.ndarray | None = None
    identity: tuple = ()  # file identities, for memoising scores across folds
    guide: np.ndarray | None = None  # the subject's T1 (datalist key t1), for baselines guided by it
    guide_identity: tuple = ()  # its file identity: a guided baseline's scores depend on it too


_SCORES: dict[tuple, float] = {}  # (method, params, file identity, slices) -> PSNR, shared by the folds of a run


def _file_key(path: str | None) -> tuple:
    if not path:
        return ("",)
    st = Path(path).stat()
    return (str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


def load_cases(items: Sequence[dict[str, Any]]) -> list[Case]:
    """Load datalist items (absolute paths) as RAS-oriented arrays; masks estimated when absent."""
    from ..metrics import estimate_support_mask

    cases = []
    for item in items:

        def load(key: str) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
            if not item.get(key):
                return None, None
            img = nib.as_closest_canonical(nib.load(item[key]))
            return np.asarray(img.get_fdata(dtype=np.float32)), img.header.get_zooms()[:3]

        low, zooms = load("image")
        full, _ = load("label")
        mask, _ = load("mask")
        lesion, _ = load("lesion")
        guide, _ = load("t1")
        case = Case(
            item["subject"],
            low,
            full,
            (mask > 0.5) if mask is not None else estimate_support_mask(low),
            tuple(float(z) for z in zooms),
            None if lesion is None else lesion > 0,
            guide=guide,
        )
        case.identity = tuple(_file_key(item.get(k)) for k in ("image", "label", "mask"))
        case.guide_identity = _file_key(item.get("t1"))
        cases.append(case)
    return cases


def score_grid(
    method: Callable[..., np.ndarray],
    grid: Sequence[dict[str, Any]],
    cases: Sequence[Case],
    slices_per_case: int | None = None,
    cache_file: str | Path | None = None,
) -> np.ndarray:
    """PSNR (inside the mask) of `method(params)` for each grid point (rows) and case (columns).

    `slices_per_case` limits slow methods to that many evenly spaced brain slices per case. `cache_file` (JSON)
    keeps every score across runs, keyed by method, parameters, the files' identities and the slices, and is
    rewritten atomically after each case, so an interrupted tuning resumes where it stopped.
    """
    cache_path = Path(cache_file) if cache_file else None
    stored: dict[str, float] = (
        read_json(cache_path, "tuning score cache") if cache_path and cache_path.is_file() else {}
    )
    scores = np.zeros((len(grid), len(cases)))
    for j, case in enumerate(cases):
        scored_before = len(stored)
        slices = None
        if slices_per_case:
            brain = np.flatnonzero(case.mask.reshape(-1, case.mask.shape[-1]).any(0))
            slices = brain[np.linspace(0, len(brain) - 1, min(slices_per_case, len(brain))).astype(int)]
        for i, params in enumerate(grid):
            guided = getattr(method, "guide_key", None) is not None
            memo = (
                getattr(method, "name", repr(method)),
                json.dumps(params, sort_keys=True),
                case.identity + ((case.guide_identity,) if guided else ()),  # the others' memos are unchanged
                None if slices is None else tuple(int(z) for z in slices),
            )
            key = json.dumps(memo)
            if case.identity and (memo in _SCORES or key in stored):
                scores[i, j] = _SCORES[memo] = stored[key] = float(_SCORES.get(memo, stored.get(key)))
                continue
            kwargs = dict(params, slices=slices) if slices is not None else dict(params)
            out = method(case.low, case.voxel_size_mm, **kwargs, **({"guide": case.guide} if guided else {}))
            if slices is None:
                scores[i, j] = masked_psnr(out, case.full, case.mask)
            else:
                scores[i, j] = masked_psnr(out[..., slices], case.full[..., slices], case.mask[..., slices])
            if case.identity:
                _SCORES[memo] = stored[key] = float(scores[i, j])
        if cache_path is not None and len(stored) > scored_before:
            write_json(stored, cache_path, overwrite=True)
        logger.debug("scored %s on %s", getattr(method, "name", method), case.subject)
    return scores


def select_parameters(
    scores: np.ndarray, grid: Sequence[dict[str, Any]], train_columns: Sequence[int]
) -> dict[str, Any]:
    """The grid point with the best mean score over the training columns only."""
    if len(train_columns) == 0:
        raise ValueError("tuning needs at least one training subject")
    best = int(np.argmax(scores[:, list(train_columns)].mean(axis=1)))
    edge = grid_edge_keys(grid[best], grid)
    if edge:
        logger.warning(
            "tuning chose %s at the edge of the grid for %s: the optimum may lie outside it", grid[best], edge
        )
    return dict(grid[best])


def grid_edge_keys(params: dict[str, Any], grid: Sequence[dict[str, Any]]) -> list[str]:
    """The numeric parameters whose chosen value is the smallest or largest of three or more on the grid."""
    keys = []
    for key, value in params.items():
        values = sorted({p[key] for p in grid if isinstance(p.get(key), (int, float))})
        if len(values) >= 3 and value in (values[0], values[-1]):
            keys.append(key)
    return keys


@dataclass
class TunedBaseline:
    """A baseline with parameters tuned on a fold's training subjects."""

    name: str
    method: Callable[..., np.ndarray]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def guide_key(self) -> str | None:
        """The datalist key of the image this baseline is guided by (e.g. t1), else None."""
        return getattr(self.method, "guide_key", None)

    def __call__(
        self, volume: np.ndarray, voxel_size_mm: tuple[float, float, float], guide: np.ndarray | None = None
    ) -> np.ndarray:
        return self.method(volume, voxel_size_mm, **self.params, **({"guide": guide} if self.guide_key else {}))
