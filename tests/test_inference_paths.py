"""Every inference path matches fp32 eager within its documented tolerance (bundle.deploy.inference_paths.PATH_TOLERANCE),
on random and on simulated inputs, and streaming inference of a volume equals slice-by-slice inference."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from bundle.deploy.inference_paths import PATH_TOLERANCE, inference_runner
from bundle.inferers import StreamingSliceInferer
from bundle.networks import ResidualUNet2p5D
from bundle.transforms import percentile_scale
from bundle.transforms.stacking import stack_adjacent_slices
from bundle.weights import load_network_weights


def _random_network() -> ResidualUNet2p5D:
    """A 8-wide network with weights large enough that the learned branch dominates the residual."""
    torch.manual_seed(0)
    net = ResidualUNet2p5D(in_slices=3, base_features=8)
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
    return net.eval()


def _trained_network(tiny_trained) -> ResidualUNet2p5D:
    net = ResidualUNet2p5D(in_slices=3, base_features=4)
    return load_network_weights(net, tiny_trained / "checkpoints" / "model.pt").eval()


def _simulated_volume(tiny_dataset) -> torch.Tensor:
    low = np.asarray(nib.load(tiny_dataset / "sub-001" / "sub-001_pet_drf200.nii.gz").get_fdata(dtype=np.float32))
    return torch.from_numpy(low / percentile_scale(low))[None, None]


def _relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out - ref).abs().max() / (ref.max() - ref.min()))


@pytest.mark.parametrize("path", sorted(PATH_TOLERANCE))
def test_every_inference_path_matches_fp32_eager(path, tiny_trained, tiny_dataset, tmp_path):
    cases = {
        "random": (_random_network(), torch.rand(1, 1, 36, 44, 9)),
        "simulated": (_trained_network(tiny_trained), _simulated_volume(tiny_dataset)),
    }
    for name, (net, volume) in cases.items():
        ref = inference_runner("fp32", net, 3, 3, tmp_path, batch_slices=4)(volume)
        out = inference_runner(path, net, 3, 3, tmp_path, batch_slices=4)(volume)
        error = _relative_error(out, ref)
        assert out.shape == volume.shape and error <= PATH_TOLERANCE[path], (name, path, error)
        if path.startswith("bf16"):
            assert error > 0.0, "the bf16 path must actually compute in reduced precision"


@pytest.mark.parametrize("batch_slices", [1, 4, 16])
def test_streaming_inference_equals_slice_by_slice(batch_slices):
    net = _random_network()
    volume = torch.rand(1, 1, 32, 40, 11)
    streamed = StreamingSliceInferer(num_slices=3, batch_slices=batch_slices)(volume, net)
    with torch.no_grad():
        for z in range(volume.shape[-1]):
            stack = stack_adjacent_slices(volume[0], 3, z, z + 1).permute(3, 0, 1, 2)  # (1, 3, X, Y)
            torch.testing.assert_close(streamed[0, :, :, :, z], net(stack)[0], rtol=1e-5, atol=1e-5)
