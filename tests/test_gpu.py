"""CUDA code paths (issue 18): `python -m pytest -m gpu` on a GPU machine (`scripts/gpu_run.py` runs them). Every
test here is skipped without CUDA, so the CPU suite and CI pass over them."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
from helpers import REPO_ROOT, tiny_overrides

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run on a GPU machine: pytest -m gpu)"),
]


def _shipped_network(device: torch.device) -> torch.nn.Module:
    from monai.bundle import ConfigParser

    from bundle.weights import load_network_weights

    parser = ConfigParser()
    parser.read_config(str(REPO_ROOT / "configs" / "inference.json"))
    net = parser.get_parsed_content("network_def")
    load_network_weights(net, REPO_ROOT / "models" / "model.pt")
    return net.eval().to(device)


def _low_dose_volume(tiny_dataset) -> tuple[torch.Tensor, torch.Tensor]:
    import json

    import nibabel as nib

    item = json.loads((tiny_dataset / "datalist.json").read_text())["training"][0]
    image = np.asarray(nib.load(tiny_dataset / item["image"]).get_fdata(dtype=np.float32))
    label = np.asarray(nib.load(tiny_dataset / item["label"]).get_fdata(dtype=np.float32))
    scale = np.percentile(image, 99.5)
    return torch.from_numpy(image / scale)[None, None], torch.from_numpy(label / scale)[None, None]


def _psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(20 * torch.log10(y.max() / torch.sqrt(torch.mean((x - y) ** 2))))


def test_one_training_epoch_on_cuda_with_device_batches(tiny_dataset, tmp_path):
    from monai.bundle import ConfigWorkflow

    from bundle.engine.device_batches import DeviceSliceBatches

    files = [str(REPO_ROOT / "configs" / "train.json"), str(REPO_ROOT / "configs" / "profiles" / "device_batches.json")]
    overrides = tiny_overrides(tiny_dataset, tmp_path, precision="auto")
    wf = ConfigWorkflow(config_file=files, workflow_type=None, logging_file=False, **overrides)
    wf.initialize()
    loader = wf.parser.get_parsed_content("train#dataloader")
    assert isinstance(loader, DeviceSliceBatches) and loader.device.type == "cuda"
    assert next(iter(loader))["image"].is_cuda
    wf.run()
    assert (tmp_path / "checkpoints" / "model.pt").is_file()


def test_bf16_inference_matches_fp32_on_cuda(tiny_dataset):
    from bundle.inferers import StreamingSliceInferer

    device = torch.device("cuda")
    net = _shipped_network(device)
    low, full = _low_dose_volume(tiny_dataset)
    low, full = low.to(device), full.to(device)
    fp32 = StreamingSliceInferer(3, batch_slices=8, precision="fp32")(low, net)
    bf16 = StreamingSliceInferer(3, batch_slices=8, precision="bf16", channels_last=True)(low, net)
    assert bf16.dtype == torch.float32 and bf16.shape == low.shape
    assert abs(_psnr(bf16, full) - _psnr(fp32, full)) < 0.05


def test_streaming_inferer_on_cuda_matches_the_cpu(tiny_dataset):
    from bundle.inferers import StreamingSliceInferer

    low, _ = _low_dose_volume(tiny_dataset)
    cpu = StreamingSliceInferer(3, batch_slices=5, precision="fp32")(low, _shipped_network(torch.device("cpu")))
    cuda = StreamingSliceInferer(3, batch_slices=5, precision="fp32")(
        low.cuda(), _shipped_network(torch.device("cuda"))
    )
    assert cuda.is_cuda
    torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-3, atol=1e-4)


def test_one_process_nccl_ddp_step():
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        from bundle.networks.residual_unet import ResidualUNet2p5D

        device = torch.device("cuda:0")
        net = torch.nn.parallel.DistributedDataParallel(ResidualUNet2p5D(base_features=4).to(device), device_ids=[0])
        opt = torch.optim.RMSprop(net.parameters(), lr=1e-3)
        before = [p.detach().clone() for p in net.parameters()]
        x, y = torch.rand(2, 3, 32, 32, device=device), torch.rand(2, 1, 32, 32, device=device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.l1_loss(net(x).float(), y)
        loss.backward()
        opt.step()
        assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters()))
        dist.all_reduce(loss.detach())
    finally:
        dist.destroy_process_group()
