"""Transforms: 2.5D stacking at the edges, slice sampling, invertible scale-equivariant normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from bundle.errors import InputDataError
from bundle.transforms import (
    AxialSliceStackd,
    PercentileScaled,
    RandAxialSlicesd,
    RandTransposed,
    stack_adjacent_slices,
)


def _volume(depth: int = 6) -> torch.Tensor:
    v = torch.zeros(1, 4, 5, depth)
    for z in range(depth):
        v[..., z] = z + 1.0  # slice z holds the value z + 1
    return v


def test_stack_replicates_edges():
    stack = stack_adjacent_slices(_volume(), 3)
    assert stack.shape == (3, 4, 5, 6)
    centre_values = [[float(stack[c, 0, 0, z]) for c in range(3)] for z in range(6)]
    assert centre_values[0] == [1.0, 1.0, 2.0]  # first slice: its missing neighbour is itself
    assert centre_values[3] == [3.0, 4.0, 5.0]
    assert centre_values[5] == [5.0, 6.0, 6.0]
    seven = stack_adjacent_slices(_volume(), 7)
    assert [float(seven[c, 0, 0, 0]) for c in range(7)] == [1, 1, 1, 1, 2, 3, 4]


def test_stack_partial_range_matches_full():
    full = stack_adjacent_slices(_volume(9), 5)
    part = stack_adjacent_slices(_volume(9), 5, start=3, stop=7)
    torch.testing.assert_close(part, full[..., 3:7])


def test_stack_transform_keeps_metadata():
    vol = MetaTensor(_volume(), affine=torch.diag(torch.tensor([2.0, 2.0, 3.0, 1.0])))
    out = AxialSliceStackd(keys="image", num_slices=3)({"image": vol})["image"]
    assert isinstance(out, MetaTensor) and out.shape == (3, 4, 5, 6)
    torch.testing.assert_close(out.affine, vol.affine)
    with pytest.raises(InputDataError):
        AxialSliceStackd(keys="image", num_slices=4)


def test_slice_sampling_skips_air():
    vol = torch.zeros(1, 8, 8, 10)
    vol[..., 3:6] = 1.0  # only slices 3, 4, 5 hold tissue
    sampler = RandAxialSlicesd(keys=["image", "label"], num_samples=50, reference_key="label")
    sampler.set_random_state(0)
    samples = sampler({"image": vol.repeat(3, 1, 1, 1), "label": vol})
    assert len(samples) == 50
    assert {s["slice_index"] for s in samples} <= {3, 4, 5}
    assert samples[0]["image"].shape == (3, 8, 8) and samples[0]["label"].shape == (1, 8, 8)


def test_rand_transpose_swaps_in_plane_axes():
    x = torch.arange(12.0).reshape(1, 3, 4)
    t = RandTransposed(keys="image", prob=1.0)
    torch.testing.assert_close(t({"image": x})["image"], x.transpose(-1, -2))
    assert RandTransposed(keys="image", prob=0.0)({"image": x})["image"].shape == (1, 3, 4)


def test_percentile_scaling_is_invertible_and_scale_equivariant():
    gen = torch.Generator().manual_seed(0)
    img = MetaTensor(torch.rand(1, 16, 16, 8, generator=gen) * 5000)
    lab = MetaTensor(torch.rand(1, 16, 16, 8, generator=gen) * 5000)
    t = PercentileScaled(keys=["image", "label"], source_key="image")
    out = t({"image": img.clone(), "label": lab.clone()})
    assert abs(float(np.percentile(out["image"].numpy(), 99.5)) - 1.0) < 1e-5
    back = t.inverse({"image": out["image"], "label": out["label"]})
    torch.testing.assert_close(back["image"].as_tensor(), img.as_tensor(), rtol=1e-5, atol=1e-3)
    scaled = t({"image": img.clone() * 1000, "label": lab.clone() * 1000})
    torch.testing.assert_close(scaled["image"].as_tensor(), out["image"].as_tensor(), rtol=1e-5, atol=1e-6)
    assert scaled["intensity_scale"] == pytest.approx(1000 * out["intensity_scale"], rel=1e-6)


def test_percentile_scaling_refuses_all_zero():
    with pytest.raises(InputDataError, match="no positive intensities"):
        PercentileScaled(keys="image")({"image": MetaTensor(torch.zeros(1, 4, 4, 4))})
