"""The device-side training batches (issue 18): what they sample, that it matches the CPU pipeline's stacking,
that they are seeded and resumable, and that the `paper-gpu` profile trains through them (on the CPU here)."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import REPO_ROOT, tiny_overrides

from bundle.engine.device_batches import DeviceSliceBatches
from bundle.errors import InputDataError
from bundle.transforms.stacking import stack_adjacent_slices


def _volumes(n: int = 3, shape: tuple[int, int, int] = (8, 8, 6), air_slices: int = 1) -> list[dict[str, torch.Tensor]]:
    """Volumes whose voxel values encode (volume, x, y, z), so every gathered voxel can be traced back; the first
    `air_slices` slices of each label are air."""
    out = []
    x, y, z = shape
    grid = torch.arange(x * y * z, dtype=torch.float32).reshape(1, x, y, z)
    for v in range(n):
        image = grid + 1000.0 * v
        label = image + 0.5
        label[..., :air_slices] = 0.0
        out.append({"image": image, "label": label, "t1": -image})
    return out


def _dihedral_matches(sample: torch.Tensor, reference: torch.Tensor) -> bool:
    """Whether `sample` is `reference` under one of the flips along X/Y and an optional transpose."""
    for transpose in (False, True):
        r = reference.transpose(-1, -2) if transpose else reference
        for fx in (False, True):
            for fy in (False, True):
                candidate = r.flip(-2) if fx else r
                candidate = candidate.flip(-1) if fy else candidate
                if torch.equal(candidate, sample):
                    return True
    return False


def test_plain_batches_are_the_cpu_stacks():
    volumes = _volumes()
    batches = DeviceSliceBatches(volumes, num_slices=3, slices_per_volume=4, batch_slices=5, augment=False)
    stacks = [stack_adjacent_slices(v["image"], 3) for v in volumes]
    seen = 0
    for batch in batches:
        assert batch["image"].shape[1:] == (3, 8, 8) and batch["label"].shape[1:] == (1, 8, 8)
        for image, label in zip(batch["image"], batch["label"]):
            v, centre = int(label[0, 0, 0] // 1000), int(label[0, 0, 0] % 1000 - 0.5) % 6
            assert torch.equal(image, stacks[v][..., centre]), "a stack differs from stack_adjacent_slices"
            assert centre >= 1, "an air slice (label below 5 % of its maximum) was sampled"
            seen += 1
    assert seen == 3 * 4


def test_each_volume_gives_exactly_its_slices_per_epoch():
    batches = DeviceSliceBatches(_volumes(n=4), slices_per_volume=7, batch_slices=3, augment=False)
    assert len(batches) == 10  # ceil(4 * 7 / 3)
    counts = torch.zeros(4, dtype=torch.long)
    for batch in batches:
        counts += torch.bincount((batch["label"][:, 0, 0, 0] // 1000).long(), minlength=4)
    assert counts.tolist() == [7, 7, 7, 7]


def test_augmented_samples_are_dihedral_variants_and_all_variants_occur():
    volumes = _volumes(n=1, shape=(6, 6, 5), air_slices=0)
    stack = stack_adjacent_slices(volumes[0]["image"], 3)
    batches = DeviceSliceBatches(volumes, slices_per_volume=400, batch_slices=64, seed=1)
    variants = set()
    for batch in batches:
        for image, label in zip(batch["image"], batch["label"]):
            centre = next(z for z in range(5) if _dihedral_matches(image, stack[..., z]))
            assert _dihedral_matches(label[0], volumes[0]["label"][0, :, :, centre])
            # the image channels and the label share one transform: find it from the label's corner
            corners = label[0, [0, 0, -1], [0, -1, 0]] - centre - 0.5  # x * 30 + y * 5 at three corners
            variants.add(tuple(corners.tolist()))
    assert len(variants) == 8, f"only {len(variants)} of the 8 flip/transpose variants were drawn"


def test_extra_channels_follow_the_pet_stack():
    batches = DeviceSliceBatches(_volumes(), num_slices=3, slices_per_volume=2, extra_keys=["t1"], augment=False)
    batch = next(iter(batches))
    assert batch["image"].shape[1] == 4
    assert torch.equal(batch["image"][:, 3], -batch["image"][:, 1]), "the T1 channel is not the centre slice's"


def test_seeded_and_resumable():
    def epoch(b: DeviceSliceBatches) -> list[torch.Tensor]:
        return [x["image"] for x in b]

    a, b = DeviceSliceBatches(_volumes(), seed=3), DeviceSliceBatches(_volumes(), seed=3)
    assert all(torch.equal(p, q) for p, q in zip(epoch(a), epoch(b)))
    assert not all(torch.equal(p, q) for p, q in zip(epoch(a), epoch(DeviceSliceBatches(_volumes(), seed=4))))
    saved = a.state_dict()
    expected = epoch(a)
    resumed = DeviceSliceBatches(_volumes(), seed=99)
    resumed.load_state_dict(saved)
    assert all(torch.equal(p, q) for p, q in zip(expected, epoch(resumed)))


def test_volumes_of_different_shapes_are_padded_with_air():
    small = _volumes(n=2, shape=(6, 8, 4))[1]  # values from 1000 up
    volumes = _volumes(n=1, shape=(8, 8, 6)) + [small]
    batch = next(iter(DeviceSliceBatches(volumes, slices_per_volume=8, batch_slices=16, augment=False)))
    assert batch["image"].shape == (16, 3, 8, 8)
    from_small = batch["label"][:, 0, 0, 0] >= 1000
    assert from_small.sum() == 8
    assert (batch["image"][from_small][:, :, 6:] == 0).all(), "the padding of the smaller volume is not air"
    assert (batch["image"][from_small][:, :, :6] >= 1000).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [({"num_slices": 2}, "num_slices"), ({"volumes": []}, "no training volumes")],
)
def test_bad_settings_are_named(kwargs, message):
    args = {"volumes": _volumes(), **kwargs}
    with pytest.raises(InputDataError, match=message):
        DeviceSliceBatches(**args)


def test_all_air_volume_is_refused():
    volumes = _volumes(n=1)
    volumes[0]["label"] = torch.zeros_like(volumes[0]["label"])
    with pytest.raises(InputDataError, match="air"):
        DeviceSliceBatches(volumes)


def test_paper_gpu_profile_trains_on_the_cpu(tiny_dataset, tmp_path):
    """The device-batch profile runs through the bundle's own training workflow (here on the CPU) and is
    reproducible: two runs with one seed give the same weights."""
    from monai.bundle import ConfigWorkflow

    profile = json.loads((REPO_ROOT / "configs" / "profiles" / "device_batches.json").read_text())
    assert profile["train#dataloader"]["_target_"].endswith("DeviceSliceBatches")
    weights = []
    for run in ("a", "b"):
        wf = ConfigWorkflow(
            config_file=[
                str(REPO_ROOT / "configs" / "train.json"),
                str(REPO_ROOT / "configs/profiles/device_batches.json"),
            ],
            workflow_type=None,
            logging_file=False,
            **tiny_overrides(tiny_dataset, tmp_path / run),
        )
        wf.initialize()
        assert isinstance(wf.parser.get_parsed_content("train#dataloader"), DeviceSliceBatches)
        wf.run()
        weights.append(torch.load(tmp_path / run / "checkpoints" / "model.pt", map_location="cpu", weights_only=True))
    state_a, state_b = (w.get("network", w) if isinstance(w, dict) else w for w in weights)
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
