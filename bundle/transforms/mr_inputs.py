"""The MR inputs of an MR-guided model at inference: every study must bring them, and they must sit on its PET."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from ..errors import InputDataError

__all__ = ["MRAlignmentCheckd", "RequireMRd"]


def _study_name(data: Mapping[Hashable, Any]) -> str:
    image = data.get("image")
    source = image.meta.get("filename_or_obj") if hasattr(image, "meta") else image
    return str(data.get("name") or Path(str(source)).name)


class RequireMRd(MapTransform):
    """Refuse, in one line naming the study, a study that lacks one of the MR `keys` an MR-guided model reads."""

    def __init__(self, keys: KeysCollection) -> None:
        super().__init__(keys, allow_missing_keys=True)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        missing = [key for key in self.keys if not data.get(key)]
        if missing:
            name = _study_name(data)
            raise InputDataError(
                f"study {name}: the MR-guided model needs its {' and '.join(map(str, missing))} (`{name}_<key>.nii.gz` "
                f"or a `{name}_<key>/` DICOM folder beside it, or the key in the datalist); use the PET-only default "
                "model for studies without MR"
            )
        return dict(data)


class MRAlignmentCheckd(MapTransform):
    """Measure how far each MR of `keys` (already resampled onto the PET's grid) is from the PET `image_key` with
    `check` (`deploy.mr_alignment.MRAlignmentCheck`: warns by study name, refuses above its limit) and store the
    residual misalignment in mm as `<key>_misalignment_mm`."""

    def __init__(self, keys: KeysCollection, check: Callable[..., Any], image_key: str = "image") -> None:
        super().__init__(keys, allow_missing_keys=False)
        self.check, self.image_key = check, image_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        image = d[self.image_key]
        spacing: Sequence[float] = [float(v) for v in image.pixdim[:3]]
        pet = torch.as_tensor(image)[0].float().numpy()
        for key in self.key_iterator(d):
            mr = np.asarray(torch.as_tensor(d[key])[0].float().numpy())
            d[f"{key}_misalignment_mm"] = self.check(_study_name(d), pet, mr, spacing).rms_mm
        return d
