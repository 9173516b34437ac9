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
from bundle.simulation.cohorts import cohort
from bundle.simulation.lesions import LESION_KINDS, RICH_LESIONS, LesionContext, add_lesion_mix, add_lesion_rich
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


@pytest.mark.parametrize("seed", range(4))
def test_lesion_rich_recipe_draws_many_small_hot_lesions_at_its_contrasts(seed):
    ctx = _context(np.random.default_rng(200 + seed))
    ctx = LesionContext(**{**ctx.__dict__, "gm_act": 20000.0})  # a grey matter the recipe's contrasts are read against
    act0, t10 = ctx.act.copy(), ctx.t1.copy()
    lesions = add_lesion_rich(ctx, np.random.default_rng(seed))
    hot = [x for x in lesions if x["kind"] != "cold"]
    assert RICH_LESIONS.hot_count[0] - 1 <= len(hot) <= RICH_LESIONS.hot_count[1]  # this toy brain may refuse one
    assert sum(x["kind"] == "cold" for x in lesions) <= RICH_LESIONS.cold_count[1]
    assert [x["label"] for x in lesions] == list(range(1, len(lesions) + 1))
    assert sorted(int(v) for v in np.unique(ctx.lesion) if v) == [x["label"] for x in lesions]
    for x in hot:
        region = ctx.lesion == x["label"]
        assert region.sum() == x["voxels"] > 0
        if x["kind"] == "ring_enhancing":
            assert RICH_LESIONS.ring_diameter_mm[0] <= x["diameter_mm"] <= RICH_LESIONS.ring_diameter_mm[1]
            continue
        assert RICH_LESIONS.solid_diameter_mm[0] <= x["diameter_mm"] <= RICH_LESIONS.solid_diameter_mm[1]
        assert RICH_LESIONS.hot_to_gm[0] <= x["to_gm"] <= RICH_LESIONS.hot_to_gm[1]
        np.testing.assert_allclose(ctx.act[region], x["to_gm"] * 20000.0, rtol=1e-3)
        assert np.allclose(ctx.t1[region], t10[region]) == (x["kind"] == "pet_only")  # PET-only: no T1 signature
    assert not np.array_equal(ctx.act, act0)


def test_lesion_rich_draws_reach_the_recipes_extremes():
    drawn = []
    for seed in range(40):
        drawn += add_lesion_rich(_context(np.random.default_rng(seed)), np.random.default_rng(seed))
    solid = [x for x in drawn if x["kind"] in ("hot_nodule", "pet_only")]
    assert {"hot_nodule", "pet_only", "ring_enhancing"} <= {x["kind"] for x in drawn}
    assert min(x["diameter_mm"] for x in solid) < 6.0 and max(x["to_gm"] for x in solid) > 3.5  # small and bright ones


def test_lesion_rich_cohort_is_the_training_cohort_with_only_its_lesions_changed():
    plain, rich = cohort("generalist-train").settings, cohort("generalist-train-lesions").settings
    assert rich["lesions"] == "rich" and plain["lesions"] == "mix"
    assert {k: v for k, v in rich.items() if k != "lesions"} == {k: v for k, v in plain.items() if k != "lesions"}


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


def test_inverse_cdf_sampler_draws_poisson_counts_from_one_uniform_per_bin():
    from scipy import stats

    from bundle.simulation.acquisition import poisson_counts

    lam = torch.tensor([0.0, 0.3, 4.0, 60.0, 2500.0]).repeat(40000, 1)
    counts = poisson_counts(lam, np.random.default_rng(7), "inverse_cdf").numpy()
    assert counts.dtype == np.float32 and (counts[:, 0] == 0).all()
    for j, mu in enumerate(lam[0].tolist()[1:], start=1):  # mean and variance of Poisson(mu), within 4 standard errors
        col = counts[:, j].astype(np.float64)
        assert abs(col.mean() - mu) < 4 * np.sqrt(mu / col.size), mu
        assert abs(col.var() / mu - 1) < 4 * np.sqrt(2 / col.size) + 0.01, mu
    small = counts[:, 2].astype(int)  # the whole distribution at mu = 4 against scipy's pmf
    observed = np.bincount(small, minlength=16)[:16] / small.size
    assert np.abs(observed - stats.poisson.pmf(np.arange(16), 4.0)).max() < 0.006
    # a last-bit change in one bin's expected count changes no other bin (the legacy sampler's stream would shift)
    nudged = lam.clone()
    nudged[0, 3] = torch.nextafter(nudged[0, 3], torch.tensor(1e9))
    again = poisson_counts(nudged, np.random.default_rng(7), "inverse_cdf").numpy()
    changed = np.argwhere(again != counts)
    assert len(changed) <= 1 and all(tuple(c) == (0, 3) for c in changed)
    chain = nested_thinning(
        torch.from_numpy(counts), [20.0, 200.0], lambda d: np.random.default_rng(int(d)), "inverse_cdf"
    )
    assert (chain[200.0] <= chain[20.0]).all() and (chain[20.0] <= torch.from_numpy(counts)).all()
    assert abs(float(chain[20.0].sum()) / counts.sum() - 1 / 20) < 0.002


def test_inverse_cdf_simulation_gives_the_same_images_on_one_and_two_threads(tmp_path):
    # on the tiny preset the legacy sampler gives sub-001 another noise realisation on 1 and 2 threads (measured:
    # 3.7 % max and 0.15 % mean relative difference at DRF 20); the inverse-CDF sampler leaves only float rounding
    config = SimulationConfig(preset="tiny", n_subjects=2, drfs=(20.0,), count_sampler="inverse_cdf")
    images = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            simulate_dataset(tmp_path / f"threads{n}", config, progress=False)
            images.append(
                [
                    nib.load(tmp_path / f"threads{n}" / s / f"{s}_pet_{k}.nii.gz").get_fdata()
                    for s in ("sub-001", "sub-002")
                    for k in ("full", "drf20")
                ]
            )
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*images):
        scale = float(np.abs(a).max())
        assert np.abs(a - b).max() <= 1e-3 * scale and np.abs(a - b).mean() <= 1e-5 * float(np.abs(a).mean())
    with pytest.raises(ValueError, match="setting count_sampler"):
        SimulationConfig(count_sampler="fast")
