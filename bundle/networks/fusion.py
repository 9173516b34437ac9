"""Inference-time fusion: each 3x3 convolution's batch norm folded into its weights (exact up to float rounding)."""

from __future__ import annotations

import copy

import torch
from monai.networks.blocks import Convolution
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fold_batch_norm"]


def fold_batch_norm(network: torch.nn.Module) -> torch.nn.Module:
    """An eval-mode copy of `network` with every MONAI `Convolution` block's batch norm folded into its convolution
    and its ReLU made in-place: the same function with one pass over the activations fewer per block. For inference
    only (the copy must not be trained); `network` itself is left unchanged."""
    fused = copy.deepcopy(network).eval()
    for block in fused.modules():
        if not isinstance(block, Convolution) or not hasattr(block, "adn"):
            continue
        norm = getattr(block.adn, "N", None)
        if isinstance(norm, torch.nn.modules.batchnorm._BatchNorm) and isinstance(block.conv, torch.nn.Conv2d):
            block.conv = fuse_conv_bn_eval(block.conv, norm)
            block.adn.N = torch.nn.Identity()
            activation = getattr(block.adn, "A", None)
            if isinstance(activation, torch.nn.ReLU):
                activation.inplace = True
    return fused
