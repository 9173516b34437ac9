"""Input checks that refuse unusable volumes with a one-line error naming the file, and mask estimation."""

from __future__ import annotations

from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

from ..errors import InputDataError
from ..metrics import estimate_support_mask
from .geometry import check_voxel_size
from .stacking import source_name

__all__ = ["CheckPETVolumesd", "EnsureMaskd"]


def _affine(x: Any) -> np.ndarray | None:
    aff = getattr(x, "affine", None)
    return None if aff is None else np.asarray(torch.as_tensor(aff).cpu(), dtype=np.float64)


class CheckPETVolumesd(MapTransform):
    """Refuse volumes the bundle cannot use; every message names the file.

    Checked after loading (channel first, before any resampling):
    - every key is one 3D volume (not 2D, not several frames), with finite values;
    - `activity_keys` (PET) are not all zero and not substantially negative;
    - the volume has at least `min_slices` axial slices;
    - every key has the shape and the affine (spacing, orientation, origin) of `reference_key`;
    - a mask is neither empty nor the whole image;
    - a label map (`label_keys`: the lesion map) holds non-negative integers only (an all-zero map is a subject
      without lesions);
    - the voxel size is plausible for PET (`geometry.VOXEL_RANGE_MM`);
    - each pair of `same_units` (the low- and full-dose PET) is in the same units: their 99.5th percentiles inside
      the image differ by less than `max_unit_ratio` (a label in kBq/mL beside an image in Bq/mL differs by 1000).
    """

    def __init__(
        self,
        keys: KeysCollection,
        reference_key: str = "image",
        activity_keys: Sequence[str] = ("image", "label"),
        mask_keys: Sequence[str] = ("mask",),
        label_keys: Sequence[str] = ("lesion",),
        min_slices: int = 3,
        affine_tolerance_mm: float = 1e-2,
        allow_missing_keys: bool = True,
        same_units: Sequence[Sequence[str]] = (("image", "label"),),
        max_unit_ratio: float = 3.0,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.reference_key = reference_key
        self.activity_keys = set(activity_keys)
        self.mask_keys = set(mask_keys)
        self.label_keys = set(label_keys)
        self.same_units = [tuple(pair) for pair in same_units]
        self.max_unit_ratio = float(max_unit_ratio)
        self.min_slices = int(min_slices)
        self.tol = float(affine_tolerance_mm)

    def _check_one(self, key: Hashable, img: Any) -> None:
        name = source_name(img, default=str(key))
        shape = tuple(img.shape)
        if len(shape) != 4 or shape[0] != 1:
            spatial = shape[1:] if len(shape) >= 1 else shape
            if len(shape) == 3 or (len(shape) == 4 and 1 in shape[1:] and shape[0] == 1):
                raise InputDataError(f"{name}: is a 2D image (shape {spatial}); a 3D volume is needed")
            raise InputDataError(
                f"{name}: has shape {shape} (channels first); one 3D volume is needed, not several frames"
            )
        if shape[-1] < self.min_slices:
            raise InputDataError(
                f"{name}: has {shape[-1]} axial slices; the 2.5D stack needs at least {self.min_slices}"
            )
        values = torch.as_tensor(img)
        if not bool(torch.isfinite(values).all()):
            raise InputDataError(f"{name}: contains NaN or Inf values")
        if key in self.activity_keys:
            vmax, vmin = float(values.max()), float(values.min())
            if vmax <= 0:
                raise InputDataError(f"{name}: is all zero or negative; a PET activity image is needed")
            if vmin < -0.05 * vmax:
                raise InputDataError(
                    f"{name}: has negative values down to {vmin:.4g} (peak {vmax:.4g}); PET activity must be non-negative"
                )
        affine = _affine(img)
        if affine is not None:
            check_voxel_size(np.linalg.norm(affine[:3, :3], axis=0), name)
        if key in self.label_keys and not bool(((values == torch.round(values)) & (values >= 0)).all()):
            raise InputDataError(f"{name}: lesion labels must be non-negative integers (0 background, one per lesion)")
        if key in self.mask_keys:
            m = values > 0
            if not bool(m.any()):
                raise InputDataError(f"{name}: the mask is empty")
            if bool(m.all()):
                raise InputDataError(f"{name}: the mask covers the whole image")

    def _check_units(self, d: Mapping[Hashable, Any]) -> None:
        for first, second in self.same_units:
            if first in d and second in d:
                names = (source_name(d[first], str(first)), source_name(d[second], str(second)))
                _check_units_pair(d[first], d[second], self.max_unit_ratio, names)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        ref = d.get(self.reference_key)
        for key in self.key_iterator(d):
            self._check_one(key, d[key])
        self._check_units(d)
        if ref is None:
            return d
        ref_name, ref_aff = source_name(ref, self.reference_key), _affine(ref)
        for key in self.key_iterator(d):
            if key == self.reference_key:
                continue
            img = d[key]
            name = source_name(img, str(key))
            if tuple(img.shape[1:]) != tuple(ref.shape[1:]):
                raise InputDataError(
                    f"{name}: shape {tuple(img.shape[1:])} differs from {ref_name} shape {tuple(ref.shape[1:])}"
                )
            aff = _affine(img)
            if aff is not None and ref_aff is not None and not np.allclose(aff, ref_aff, atol=self.tol):
                sp, ref_sp = np.linalg.norm(aff[:3, :3], axis=0), np.linalg.norm(ref_aff[:3, :3], axis=0)
                what = "voxel spacing" if not np.allclose(sp, ref_sp, atol=self.tol) else "orientation or origin"
                raise InputDataError(f"{name}: {what} differs from {ref_name} (affines do not match)")
        return d


def _upper_percentile(img: Any) -> float:
    values = torch.as_tensor(img).float().reshape(-1)
    positive = values[values > 0]
    if positive.numel() == 0:
        return 0.0
    step = max(1, positive.numel() // 1_000_000)  # a subsample is enough to tell units apart
    return float(torch.quantile(positive[::step], 0.995))


def _check_units_pair(a: Any, b: Any, ratio_limit: float, names: tuple[str, str]) -> None:
    pa, pb = _upper_percentile(a), _upper_percentile(b)
    if pa > 0 and pb > 0 and max(pa / pb, pb / pa) > ratio_limit:
        raise InputDataError(
            f"{names[1]}: intensities are {pb / pa:.3g} x those of {names[0]} (99.5th percentiles); the low- and "
            "full-dose images must be in the same units (e.g. both Bq/mL)"
        )


class EnsureMaskd(MapTransform):
    """Provide `mask_key`: keep a given mask, or estimate one from the image's support (the paper's way)."""

    def __init__(self, mask_key: str = "mask", image_key: str = "image") -> None:
        super().__init__([mask_key], allow_missing_keys=True)
        self.mask_key = mask_key
        self.image_key = image_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if isinstance(d.get(self.mask_key), torch.Tensor):
            d[self.mask_key] = (d[self.mask_key] > 0.5).float()
            return d
        image = d[self.image_key]
        mask = torch.from_numpy(estimate_support_mask(torch.as_tensor(image)[0]).astype(np.float32))[None]
        d[self.mask_key] = MetaTensor(mask, meta=dict(image.meta)) if isinstance(image, MetaTensor) else mask
        return d
