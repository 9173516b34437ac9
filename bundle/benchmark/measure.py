"""Measuring primitives: median wall time after a warm-up, matmul rate, convolution FLOPs, memory, the machine,
the benchmark volume and the network of a config, and whole-volume timings on an accelerator."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

__all__ = [
    "benchmark_volume",
    "build_network",
    "conv_flops_per_slice",
    "current_rss_mb",
    "device_volume_timings",
    "machine_description",
    "matmul_gflops",
    "median_seconds",
    "peak_rss_mb",
    "shipped_weights",
    "training_slices_per_second",
]


def median_seconds(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def matmul_gflops(dtype: torch.dtype = torch.float32, n: int = 2048, repeat: int = 5) -> float:
    """Measured dense matrix-multiply rate (2 n^3 FLOP per product)."""
    a = torch.rand(n, n, dtype=torch.float32).to(dtype)
    b = torch.rand(n, n, dtype=torch.float32).to(dtype)
    seconds = median_seconds(lambda: torch.mm(a, b), repeat=repeat, warmup=2)
    return 2 * n**3 / seconds / 1e9


def conv_flops_per_slice(net: torch.nn.Module, in_channels: int, size: tuple[int, int] = (256, 256)) -> float:
    """FLOPs (2 x multiply-accumulates) of the convolutions for one slice, counted with forward hooks."""
    total = [0.0]

    def hook(module: torch.nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        k = module.kernel_size[0] * module.kernel_size[1] * (module.in_channels // module.groups)
        total[0] += 2.0 * k * out.numel()

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net.eval()(torch.rand(1, in_channels, *size))
    for h in handles:
        h.remove()
    return total[0]


def machine_description() -> str:
    """CPU model and kind (AMX, AVX-512 BF16 or AVX2: what decides the speed and, for the simulator, the numbers),
    cores, torch and its threads, and the GPU."""
    cpu, flags = platform.processor() or "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name") and not flags:
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    kind = next((name for flag, name in CPU_KINDS if flag in flags), "")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    cpu = f"{cpu} ({kind})" if kind else cpu
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), {gpu}"


CPU_KINDS = (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16"), ("avx2", "AVX2"))


def benchmark_volume(
    root: str | Path = "data/benchmark", preset: str = "paper"
) -> tuple[np.ndarray, tuple[float, ...]]:
    """The low-dose volume of one simulated subject of `preset` (simulated once, then reused)."""
    import nibabel as nib

    from ..simulation import SimulationConfig, simulate_dataset

    folder = Path(root) / preset
    datalist = folder / "datalist.json"
    if not datalist.is_file():
        simulate_dataset(folder, SimulationConfig(preset=preset, n_subjects=1, seed=123), progress=False)
    item = json.loads(datalist.read_text())["training"][0]
    img = nib.load(folder / item["image"])
    return np.asarray(img.get_fdata(dtype=np.float32)), tuple(float(z) for z in img.header.get_zooms()[:3])


def build_network(
    config_files: Sequence[str], overrides: dict[str, Any] | None = None
) -> tuple[torch.nn.Module, int, int]:
    """The config's network, its stack depth and its extra input channels (the dose-code channel of a
    dose-conditioned model among them). A config with a `ckpt_path` that exists (the inference config: the shipped
    weights) gets those weights, so what is timed is the shipped model; otherwise the weights stay random (timing
    does not depend on them)."""
    from monai.bundle import ConfigParser

    from ..weights import load_network_weights

    parser = ConfigParser()
    parser.read_config(list(config_files))
    parser.update(dict(overrides or {}))
    net = parser.get_parsed_content("network_def").eval()
    weights = Path(str(parser.get_parsed_content("ckpt_path"))) if "ckpt_path" in parser else None
    if weights is not None and weights.is_file():
        load_network_weights(net, weights)
    num_slices = int(parser.get_parsed_content("num_slices"))
    return net, num_slices, int(getattr(net, "in_channels", num_slices)) - num_slices


def shipped_weights(config_file: str = "configs/inference.json") -> tuple[str, str]:
    """(path, sha256) of the weights file the inference config loads."""
    from monai.bundle import ConfigParser

    from ..io import file_sha256

    parser = ConfigParser()
    parser.read_config(config_file)
    path = Path(str(parser.get_parsed_content("ckpt_path")))
    return str(path), file_sha256(path) if path.is_file() else "missing"


def training_slices_per_second(
    net: torch.nn.Module,
    in_channels: int,
    device: torch.device | str = "cpu",
    batch: int = 16,
    size: int = 256,
    steps: int = 10,
    warmup: int = 2,
) -> float:
    """Slices per second of training steps on `device` (forward in the precision `PrecisionInferer('auto')` picks
    there, L1 loss, backward, RMSprop with foreach updates on CUDA), the inputs already on the device as in
    `DeviceSliceBatches`; CUDA is synchronised after every step so the median is the step's real time."""
    from ..inferers import PrecisionInferer

    device = torch.device(device)
    net = net.train().to(device=device, memory_format=torch.channels_last)
    opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, foreach=device.type == "cuda")
    inferer = PrecisionInferer("auto", channels_last=True)
    x = torch.rand(batch, in_channels, size, size, device=device)
    y = torch.rand(batch, 1, size, size, device=device)

    def step() -> None:
        loss = torch.nn.functional.l1_loss(inferer(x, net).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return batch / median_seconds(step, repeat=steps, warmup=warmup)


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MB."""
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    """This process's resident memory now (VmRSS) in MB."""
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def device_volume_timings(
    net: torch.nn.Module,
    volume: np.ndarray,
    num_slices: int,
    device: torch.device | str,
    precisions: Sequence[str] = ("fp32", "bf16", "fp16"),
    repeat: int = 10,
    extra_channels: int = 0,
) -> list[dict[str, Any]]:
    """Whole-volume inference on `device` with every slice in one batch: ms per slice with the volume already on
    the device, and the volume's time including the host-to-device and device-to-host transfers. `extra_channels`
    constant input channels follow the volume (the dose code of a dose-conditioned model)."""
    from ..inferers import StreamingSliceInferer

    device = torch.device(device)
    net = net.eval().to(device)
    host = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None, None]
    host = torch.cat([host] + [torch.full_like(host, 0.5)] * extra_channels, dim=1)  # e.g. a constant dose code
    on_device = host.to(device)
    depth = volume.shape[-1]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    rows = []
    for precision in precisions:
        if precision == "fp16" and device.type != "cuda":
            continue  # no fp16 autocast worth timing on CPU
        inferer = StreamingSliceInferer(num_slices, batch_slices=depth, precision=precision)

        def network_only() -> None:
            inferer(on_device, net)
            sync()

        def with_transfers() -> None:
            inferer(host.to(device), net).cpu()
            sync()

        rows.append(
            {
                "precision": precision,
                "ms/slice": 1000 * median_seconds(network_only, repeat, 2) / depth,
                "ms/volume incl. transfers": 1000 * median_seconds(with_transfers, repeat, 2),
            }
        )
    return rows
