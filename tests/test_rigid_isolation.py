"""Fold isolation catches a copy of a test subject moved by a few voxels or turned by a few degrees
(`bundle/data/rigid_similarity.py`), and passes different subjects."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from bundle.data.folds import assert_fold_isolation
from bundle.data.rigid_similarity import RIGID_DUPLICATE_CORRELATION, coarse_fingerprint, rigid_similarity
from bundle.errors import InputDataError


def _subject(rng: np.random.Generator, shape=(96, 96, 64)) -> np.ndarray:
    """A smooth random 'brain' at 2 mm: an ellipsoid of random radii with a random texture of about 1 cm."""
    grid = np.mgrid[tuple(slice(0, n) for n in shape)].astype(np.float32)
    centre = (np.asarray(shape) - 1) / 2
    radius = np.asarray(shape) * rng.uniform(0.3, 0.42, 3)
    inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radius)) <= 1
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), 5.0)
    return (inside * (1.0 + 0.6 * texture / texture.std())).clip(0).astype(np.float32)


def _write(volume: np.ndarray, path):
    nib.save(nib.Nifti1Image(volume, np.diag([2.0, 2.0, 2.0, 1.0])), str(path))
    return str(path)


@pytest.fixture(scope="module")
def subjects(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rigid")
    rng = np.random.default_rng(0)
    test = _subject(rng)
    moved = {
        "shifted 3, -2, 2 voxels": ndimage.shift(test, (3, -2, 2), order=1),
        "rotated 5 degrees in-plane": ndimage.rotate(test, 5, (0, 1), reshape=False, order=1),
        "rotated 5 degrees about x and shifted": ndimage.shift(
            ndimage.rotate(test, -5, (1, 2), reshape=False, order=1), (2, 2, 0), order=1
        ),
    }
    return {
        "test": _write(test, folder / "test.nii.gz"),
        "others": [_write(_subject(rng), folder / f"other{k}.nii.gz") for k in range(3)],
        "moved": {name: _write(v, folder / f"moved{k}.nii.gz") for k, (name, v) in enumerate(moved.items())},
    }


def test_rigidly_moved_copies_correlate_above_the_threshold_and_other_subjects_below(subjects):
    from bundle.data.fingerprint import DUPLICATE_CORRELATION, fingerprint, similarity

    for name in ("shifted 3, -2, 2 voxels", "rotated 5 degrees about x and shifted"):  # what the voxelwise check missed
        assert similarity(fingerprint(subjects["test"]), fingerprint(subjects["moved"][name])) < DUPLICATE_CORRELATION
    test = coarse_fingerprint(subjects["test"])
    for name, path in subjects["moved"].items():
        assert rigid_similarity(test, coarse_fingerprint(path)) >= RIGID_DUPLICATE_CORRELATION, name
    for path in subjects["others"]:
        assert rigid_similarity(test, coarse_fingerprint(path)) < RIGID_DUPLICATE_CORRELATION


@pytest.mark.parametrize("case", ["shifted 3, -2, 2 voxels", "rotated 5 degrees in-plane",
                                  "rotated 5 degrees about x and shifted"])  # fmt: skip
def test_fold_isolation_refuses_a_moved_copy_of_the_test_subject(subjects, case):
    train = [{"subject": f"o{k}", "image": p, "label": p} for k, p in enumerate(subjects["others"])]
    train.append({"subject": "renamed", "image": subjects["moved"][case], "label": subjects["moved"][case]})
    test = [{"subject": "t", "image": subjects["test"], "label": subjects["test"]}]
    with pytest.raises(InputDataError, match="copy of test subject 't'"):
        assert_fold_isolation(train, [], test)
    assert_fold_isolation(train[:-1], [], test)  # without the copy: passes
