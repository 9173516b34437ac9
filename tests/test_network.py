"""The residual U-Net: shapes for every switch combination, the residual uses the centre slice, init, sizes."""

from __future__ import annotations

import itertools

import pytest
import torch

from bundle.networks import ResidualUNet2p5D
from bundle.networks.acnet import AutoContextNet


@pytest.mark.parametrize("residual, concat", list(itertools.product([True, False], [True, False])))
@pytest.mark.parametrize("in_slices", [1, 3, 5, 7])
def test_output_shape_for_every_switch(residual, concat, in_slices):
    net = ResidualUNet2p5D(in_slices=in_slices, base_features=4, residual=residual, concat_skips=concat)
    out = net(torch.rand(2, in_slices, 40, 48))
    assert out.shape == (2, 1, 40, 48)


@pytest.mark.parametrize("num_poolings, convs", [(2, 1), (3, 2), (4, 3), (5, 1)])
def test_depth_grid_and_odd_sizes_pad_and_crop(num_poolings, convs):
    net = ResidualUNet2p5D(num_poolings=num_poolings, convs_per_stage=convs, base_features=4)
    for size in [(37, 53), (64, 64), (33, 100)]:
        assert net(torch.rand(1, 3, *size)).shape == (1, 1, *size)


def test_residual_adds_the_centre_slice():
    net = ResidualUNet2p5D(in_slices=5, base_features=4).eval()
    torch.nn.init.zeros_(net.head.weight)
    torch.nn.init.zeros_(net.head.bias)
    x = torch.rand(1, 5, 32, 32)
    torch.testing.assert_close(net(x), x[:, 2:3])
    # the non-residual network with a zero head outputs zeros instead
    plain = ResidualUNet2p5D(in_slices=5, base_features=4, residual=False).eval()
    torch.nn.init.zeros_(plain.head.weight)
    torch.nn.init.zeros_(plain.head.bias)
    assert float(plain(x).abs().max()) == 0.0


def test_extra_channels_are_accepted_after_the_slices():
    net = ResidualUNet2p5D(in_slices=3, extra_channels=1, base_features=4).eval()
    torch.nn.init.zeros_(net.head.weight)
    torch.nn.init.zeros_(net.head.bias)
    x = torch.rand(1, 4, 32, 32)
    torch.testing.assert_close(net(x), x[:, 1:2])


def test_truncated_normal_init():
    net = ResidualUNet2p5D(base_features=32)
    weights = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, torch.nn.Conv2d)])
    biases = torch.cat(
        [m.bias.flatten() for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None]
    )
    assert float(weights.abs().max()) <= 0.04 + 1e-6  # cut at 2 std
    assert abs(float(weights.std()) - 0.0176) < 0.002  # std of a N(0, 0.02) truncated at 2 std
    assert float(biases.abs().max()) == 0.0


@pytest.mark.parametrize(
    "bad", [dict(in_slices=2), dict(num_poolings=0), dict(convs_per_stage=5), dict(output_activation="relu")]
)
def test_invalid_settings_are_refused(bad):
    with pytest.raises(ValueError):
        ResidualUNet2p5D(**bad)


def test_acnet_returns_whole_slices_and_stage_outputs():
    net = AutoContextNet(in_channels=2, features=8)
    x = torch.rand(2, 2, 37, 45)
    stages = net.train()(x)
    assert len(stages) == 3 and all(s.shape == (2, 1, 37, 45) for s in stages)
    assert net.eval()(x).shape == (2, 1, 37, 45)
    assert AutoContextNet(in_channels=1, features=8).eval()(torch.rand(1, 1, 30, 30)).shape == (1, 1, 30, 30)


def test_folded_batch_norm_gives_the_same_output_and_leaves_the_network_unchanged():
    from bundle.networks import fold_batch_norm

    torch.manual_seed(0)
    net = ResidualUNet2p5D(in_slices=3, extra_channels=1, dose_conditioning=True, base_features=8, num_poolings=2)
    for m in net.modules():  # trained-like statistics and affine parameters, so the fold has something to fold
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.film.mlp[2].weight.data.normal_(0, 0.1)
    net.eval()
    x = torch.rand(2, 4, 20, 24)
    x[:, -1] = 0.3
    with torch.no_grad():
        expected = net(x)
        fused = fold_batch_norm(net)
        got = fused(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) > 0
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert not torch.equal(fused.encoder[0][0].conv.weight, net.encoder[0][0].conv.weight)


def test_a_guide_gate_starts_open_scales_the_guide_only_and_can_close():
    torch.manual_seed(0)
    gated = ResidualUNet2p5D(in_slices=3, extra_channels=3, dose_conditioning=True, guide_channels=2, base_features=4)
    plain = ResidualUNet2p5D(in_slices=3, extra_channels=3, dose_conditioning=True, base_features=4)
    plain.load_state_dict({k: v for k, v in gated.state_dict().items() if not k.startswith("guide_gate.")})
    gated.eval(), plain.eval()
    x = torch.rand(2, 6, 24, 24)
    open_share = torch.sigmoid(torch.tensor(3.0))
    assert torch.allclose(gated.guide_gate.gate(x[:, :5]), open_share.expand(2, 2, 24, 24))
    scaled = x.clone()
    scaled[:, 3:5] *= open_share  # the PET slices and the dose code pass untouched
    torch.testing.assert_close(gated(x), plain(scaled))
    torch.nn.init.constant_(gated.guide_gate.branch[2].bias, -60.0)  # a shut gate: the guide no longer matters
    other_guide = x.clone()
    other_guide[:, 3:5] = torch.rand(2, 2, 24, 24)
    torch.testing.assert_close(gated(x), gated(other_guide))
    torch.testing.assert_close(torch.jit.script(gated)(x), gated(x))


@pytest.mark.parametrize(
    "bad", [dict(extra_channels=1, dose_conditioning=True, guide_channels=1), dict(extra_channels=2, guide_channels=3)]
)
def test_guide_channels_beyond_the_extra_inputs_are_refused(bad):
    with pytest.raises(ValueError, match="guide_channels"):
        ResidualUNet2p5D(base_features=4, **bad)
