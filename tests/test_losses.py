"""Losses selectable by name, including MONAI's SSIM loss and MS-SSIM; unknown names refused."""

from __future__ import annotations

import pytest
import torch

from bundle.errors import ConfigValueError
from bundle.losses import LESION_MAP_LOSSES, LOSSES, LesionSUVConsistencyLoss, UptakeWeightedL1Loss, image_loss


@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_is_zero_at_identity_and_positive_otherwise(name):
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(2, 1, 64, 64, generator=gen)
    x = (y + 0.2 * torch.rand(2, 1, 64, 64, generator=gen)).requires_grad_()
    loss = image_loss(name)
    # lesion-l1's weights and uptake-l1-suv's lesion ids ride on the label
    label = torch.cat([y, torch.ones_like(y)], 1) if name in LESION_MAP_LOSSES else y
    assert float(loss(y, label)) == pytest.approx(0.0, abs=1e-5)
    value = loss(x, label)
    value.backward()
    assert float(value) > 0 and x.grad is not None


def test_unknown_loss_is_refused():
    with pytest.raises(ConfigValueError, match="loss_name"):
        image_loss("huber")


def test_suv_consistency_term_is_each_lesion_cross_sections_relative_sum_error():
    target = torch.full((2, 1, 8, 8), 0.5)
    ids = torch.zeros_like(target)
    ids[0, :, :2, :2] = 1  # lesion 1 in sample 0 (4 voxels)
    ids[1, :, :3, :3] = 1  # the same id in sample 1 is another cross-section (9 voxels)
    ids[1, :, 6, 6] = 2  # 1 voxel: under min_voxels, ignored
    target[0, :, :2, :2] = 2.0
    pred = target.clone()
    pred[0, :, 0, 0] = 1.0  # lesion 1 of sample 0: sum 7 against 8, error 1/8
    pred[1, :, 6, 6] = 3.0  # outside every counted cross-section
    loss = LesionSUVConsistencyLoss(suv_weight=0.5, uptake_weight=4.0, min_voxels=4)
    errors = loss.lesion_suv_errors(pred, target, ids)
    torch.testing.assert_close(errors.sort().values, torch.tensor([0.0, 1.0 / 8.0]))
    label = torch.cat([target, ids], 1)
    expected = UptakeWeightedL1Loss(weight=4.0)(pred, target) + 0.5 * (1.0 / 8.0) / 2
    torch.testing.assert_close(loss(pred, label), expected)


def test_suv_consistency_term_penalises_lost_lesion_uptake_not_its_noise():
    gen = torch.Generator().manual_seed(1)
    target = torch.full((1, 1, 16, 16), 0.5)
    target[..., 4:10, 4:10] = 2.0
    ids = torch.zeros_like(target)
    ids[..., 4:10, 4:10] = 3
    label = torch.cat([target, ids], 1)
    suv = LesionSUVConsistencyLoss(suv_weight=1.0)
    noise = torch.randn(1, 1, 6, 6, generator=gen) * 0.2
    noisy, smoothed = target.clone(), target.clone()
    noisy[..., 4:10, 4:10] += noise - noise.mean()  # the lesion's mean kept
    smoothed[..., 4:10, 4:10] -= noise.abs().mean()  # the same L1 error, all of it lost uptake
    assert float(suv.lesion_suv_errors(noisy, target, ids).max()) < 1e-6
    assert float(suv(smoothed, label)) > float(suv(noisy, label))
    no_lesion = torch.cat([target, torch.zeros_like(target)], 1)
    torch.testing.assert_close(suv(smoothed, no_lesion), UptakeWeightedL1Loss()(smoothed, target))
    with pytest.raises(ConfigValueError, match="uptake-l1-suv"):
        suv(smoothed, target)
    with pytest.raises(ConfigValueError, match="suv_weight"):
        image_loss("uptake-l1-suv", suv_weight=-1.0)


def test_noise_balanced_loss_reads_the_identity_as_one_at_every_noise_level():
    from bundle.losses import NoiseBalancedLoss
    from bundle.transforms import AppendNoiseBalanceWeightd

    gen = torch.Generator().manual_seed(1)
    full = torch.rand(1, 16, 16, 6, generator=gen) + 0.5
    mask = torch.ones_like(full)
    slices, labels = [], []
    for sigma in (0.01, 0.3):  # a DRF-2-like and a DRF-200-like draw: absolute errors 30x apart
        low = full + sigma * torch.randn(full.shape, generator=gen)
        item = AppendNoiseBalanceWeightd()({"subject": "s", "image": low, "label": full.clone(), "mask": mask})
        assert item["label"].shape == (2, 16, 16, 6)
        # the weight is 1 / the input's mean absolute error in the brain, computed independently here
        assert float(item["label"][1].unique()) == pytest.approx(1.0 / float((low - full).abs().mean()), rel=1e-5)
        slices.append(low[..., 3].unsqueeze(0))
        labels.append(item["label"][..., 3].unsqueeze(0))
    pred, label = torch.cat(slices), torch.cat(labels)
    loss = image_loss("l1", noise_balanced=True)
    assert isinstance(loss, NoiseBalancedLoss)
    # returning the input costs one input error per sample, whatever its noise level (the slice's mean |error| is
    # not the volume's, so approximately)
    per_sample = [float(loss(pred[i : i + 1], label[i : i + 1])) for i in range(2)]
    assert per_sample == pytest.approx([1.0, 1.0], rel=0.15)
    # the batch loss is the mean of w_i x the inner loss of each sample
    weights = label[:, 1].flatten(1).mean(1)
    expected = sum(float(weights[i]) * float(torch.nn.L1Loss()(pred[i], label[i, :1])) for i in range(2)) / 2
    assert float(loss(pred, label)) == pytest.approx(expected, rel=1e-5)
    # unbalanced, the DRF-200-like draw would dominate
    plain = [float(torch.nn.L1Loss()(pred[i], label[i, :1])) for i in range(2)]
    assert plain[1] > 10 * plain[0]


def test_noise_balanced_loss_passes_the_other_channels_to_its_inner_loss_and_refuses_bad_labels():
    from bundle.losses import LesionWeightedL1Loss
    from bundle.transforms import AppendNoiseBalanceWeightd

    target = torch.full((1, 1, 8, 8), 0.5)
    weights = torch.ones_like(target)
    weights[..., :2, :2] = 6.0
    pred = target.clone()
    pred[..., 0, 0] += 0.1
    label = torch.cat([target, weights, torch.full_like(target, 2.0)], 1)
    balanced = image_loss("lesion-l1", noise_balanced=True)
    assert float(balanced(pred, label)) == pytest.approx(2.0 * float(LesionWeightedL1Loss()(pred, label[:, :2])))
    with pytest.raises(ConfigValueError, match="noise-balanced"):
        image_loss("l1", noise_balanced=True)(pred, target)
    with pytest.raises(ConfigValueError, match="noise_balanced"):
        image_loss("l1", deep_supervision=True, noise_balanced=True)
    volume = torch.rand(1, 4, 4, 4)
    with pytest.raises(Exception, match="mask"):
        AppendNoiseBalanceWeightd()({"subject": "s", "image": volume, "label": volume})
    with pytest.raises(Exception, match="empty"):
        AppendNoiseBalanceWeightd()({"subject": "s", "image": volume, "label": volume, "mask": volume * 0})
