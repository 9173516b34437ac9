"""The PET-MR alignment check (issue 33): ITK's rigid registration reads back known shifts and turns."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from helpers import user_error_line
from scipy import ndimage

from bundle.data import load_datalist
from bundle.deploy.mr_alignment import MRAlignmentCheck, rigid_misalignment
from bundle.errors import ConfigValueError
from bundle.io import load_ras_volume


@pytest.fixture(scope="module")
def pet_and_t1(tiny_dataset) -> tuple[np.ndarray, np.ndarray]:
    item = load_datalist(tiny_dataset / "datalist.json")[0]
    return load_ras_volume(item["label"]), load_ras_volume(item["t1"])


def test_registration_reads_back_a_known_shift_and_turn(pet_and_t1):
    pet, t1 = pet_and_t1
    spacing = (4.0, 4.0, 4.0)  # the tiny preset's voxels: shifts of whole voxels, so no interpolation blurs the MR
    assert rigid_misalignment(pet, t1, spacing).rms_mm < 0.5  # the simulator's T1 is aligned with its PET
    for axis in range(3):
        shift = [0.0, 0.0, 0.0]
        shift[axis] = 1.0
        found = rigid_misalignment(pet, ndimage.shift(t1, shift, order=0), spacing)
        assert found.translation_mm[axis] == pytest.approx(4.0, abs=0.5) and found.rms_mm < 5.0, (axis, found)
    turned = ndimage.rotate(t1, 4.0, axes=(0, 1), reshape=False, order=1)  # 4 degrees in plane, about the centre
    assert rigid_misalignment(pet, turned, spacing).rotation_deg[2] == pytest.approx(4.0, abs=0.6)


def test_the_check_warns_by_name_above_2_mm_and_refuses_above_its_limit(pet_and_t1, caplog):
    pet, t1 = pet_and_t1
    check = MRAlignmentCheck(warn_mm=2.0, refuse_mm=6.0)
    with caplog.at_level(logging.WARNING, logger="bundle"):
        check("aligned", pet, t1, (4.0,) * 3)
        assert "aligned" not in caplog.text
        check("shifted", pet, ndimage.shift(t1, (0.0, 1.0, 0.0), order=0), (4.0,) * 3)  # 4 mm
    assert "study shifted: its MR is" in caplog.text
    far = ndimage.shift(t1, (0.0, 2.0, 0.0), order=0)  # 8 mm
    assert "limit 6 mm, setting mr_alignment" in user_error_line(lambda: check("far", pet, far, (4.0,) * 3))
    assert "not on the PET's grid" in user_error_line(lambda: check("grid", pet, t1[:-1], (4.0,) * 3))
    with pytest.raises(ConfigValueError, match="setting mr_alignment"):
        MRAlignmentCheck(warn_mm=3.0, refuse_mm=2.0)
