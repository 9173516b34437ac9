"""The simulator's nested dose levels and its lesion mix."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from bundle.data import load_datalist
from bundle.simulation import SimulationConfig, simulate_dataset
from bundle.simulation.acquisition import nested_thinning, thin_counts
from bundle.simulation.lesions import LESION_KINDS, LesionContext, add_lesion_mix
from bundle.simulation.phantom import TissueModel
from bundle.simulation.presets import DOSE_CHAIN, PRESETS


def test_dose_levels_are_nested_bin_by_bin_and_keep_their_expected_totals():
    counts = torch.from_numpy(np.random.default_rng(0).poisson(40.0, size=(16, 42, 64)).astype(np.float32))
    chain = nested_thinning(counts, DOSE_CHAIN, lambda d: np.random.default_rng([7, int(d * 1000)]))
    levels = sorted(chain)  # 2, 4, ..., 200: decreasing dose
    assert levels == sorted(DOSE_CHAIN)
    for high_dose, low_dose in zip([None, *levels[:-1]], levels):
        upper = counts if high_dose is None else chain[high_dose]
        assert bool((chain[low_dose] <= upper).all()), (high_dose, low_dose)  # every event of DRF D is in the one above
    total = float(counts.sum())
    for drf, kept in chain.items():
        expected = total / drf
        assert abs(float(kept.sum()) - expected) < 4 * np.sqrt(expected * (1 - 1 / drf)), drf  # binomial, 4 sd
    assert float(chain[200.0].sum()) / float(chain[100.0].sum()) == pytest.approx(0.5, abs=0.05)
    # the lowest dose is exactly what independent thinning with its stream gives: the default DRF-200 data stay the same
    alone = thin_counts(counts, 200.0, np.random.default_rng([7, 200000]))
    assert torch.equal(alone, chain[200.0])


def _context(rng: np.random.Generator) -> LesionContext:
    shape, vox = (48, 48, 32), (2.0, 2.0, 2.0)
    geometry = PRESETS["tiny"].__class__("t", shape, vox, n_views=12, counts_full_dose=1e6)
    grid = np.stack(np.meshgrid(*[np.arange(n) * 2.0 for n in shape], indexing="ij"))
    dist = 40.0 - np.sqrt(((grid - np.array([47.0, 47.0, 31.0])[:, None, None, None]) ** 2).sum(0))
    brain = dist > 0
    act = np.where(brain, 8000.0 + 1000.0 * rng.random(shape), 0.0).astype(np.float32)
    t1 = np.where(brain, 900.0, 0.0).astype(np.float32)
    return LesionContext(
        act,
        t1,
        np.zeros(shape, np.uint8),
        brain,
        np.maximum(dist, 0).astype(np.float32),
        geometry,
        TissueModel(),
        32000.0,
        8000.0,
        900.0,
    )


@pytest.mark.parametrize("seed", range(6))
def test_lesion_mix_labels_each_lesion_and_gives_each_kind_its_signature(seed):
    ctx = _context(np.random.default_rng(100 + seed))
    act0, t10 = ctx.act.copy(), ctx.t1.copy()
    lesions = add_lesion_mix(ctx, np.random.default_rng(seed))
    assert 1 <= len(lesions) <= 4 and len({x["kind"] for x in lesions}) == len(lesions)
    assert sorted(int(v) for v in np.unique(ctx.lesion) if v) == [x["label"] for x in lesions]
    for x in lesions:
        region = ctx.lesion == x["label"]
        lo, hi = LESION_KINDS[x["kind"]]
        assert region.sum() == x["voxels"] > 0 and lo <= x["diameter_mm"] <= hi
        t1_changed = not np.allclose(ctx.t1[region], t10[region])
        if x["kind"] == "cold":
            assert ctx.act[region].mean() < 0.7 * act0[region].mean() and not t1_changed
        elif x["kind"] == "pet_only":
            assert ctx.act[region].mean() > 1.4 * 32000.0 * 0.99 and not t1_changed  # no T1 signature
        else:
            assert ctx.act[region].max() > act0[region].max() and t1_changed


def test_simulated_dataset_names_every_dose_level_and_describes_its_lesions(tmp_path):
    config = SimulationConfig(
        preset="tiny", slices=16, n_subjects=2, seed=5, drfs=(20.0, 200.0), lesions="mix", device="cpu"
    )
    manifest = simulate_dataset(tmp_path, config, progress=False)
    items = load_datalist(tmp_path / "datalist.json")
    assert json.loads((tmp_path / "datalist.json").read_text())["drf"] == 200.0  # `image` is the paper's DRF 200
    for item in items:
        assert item["image"] == item["image_drf200"] and item["image_drf20"].endswith("_pet_drf20.nii.gz")
        labels = np.asarray(nib.load(item["lesion"]).dataobj)
        described = manifest["subjects"][item["subject"]]["lesions"]
        assert sorted(int(v) for v in np.unique(labels) if v) == [x["label"] for x in described]
        assert {x["kind"] for x in described} <= set(LESION_KINDS)
        tissue = np.asarray(nib.load(item["tissue"]).dataobj)
        assert set(np.unique(tissue)) <= {0, 1, 2, 3} and (tissue == 2).any()
        low20 = np.asarray(nib.load(item["image_drf20"]).dataobj)
        low200 = np.asarray(nib.load(item["image"]).dataobj)
        assert low20.shape == low200.shape and not np.array_equal(low20, low200)
    recorded = [s["recorded_prompts"] for s in manifest["subjects"].values()]
    assert all(r["drf200"] <= r["drf20"] <= r["full"] for r in recorded)
