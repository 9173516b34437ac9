"""Losses selectable by name, including MONAI's SSIM loss and MS-SSIM; unknown names refused."""

from __future__ import annotations

import pytest
import torch

from bundle.errors import ConfigValueError
from bundle.losses import LOSSES, image_loss


@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_is_zero_at_identity_and_positive_otherwise(name):
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(2, 1, 64, 64, generator=gen)
    x = (y + 0.2 * torch.rand(2, 1, 64, 64, generator=gen)).requires_grad_()
    loss = image_loss(name)
    label = torch.cat([y, torch.ones_like(y)], 1) if name == "lesion-l1" else y  # lesion-l1: weights ride on the label
    assert float(loss(y, label)) == pytest.approx(0.0, abs=1e-5)
    value = loss(x, label)
    value.backward()
    assert float(value) > 0 and x.grad is not None


def test_unknown_loss_is_refused():
    with pytest.raises(ConfigValueError, match="loss_name"):
        image_loss("huber")
