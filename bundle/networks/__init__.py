"""Networks: the paper's 2.5D residual U-Net and the AC-Net baseline."""

from .acnet import AutoContextNet
from .fusion import fold_batch_norm
from .residual_unet import GuideGate, ResidualUNet2p5D, init_truncated_normal

__all__ = ["AutoContextNet", "GuideGate", "fold_batch_norm", "ResidualUNet2p5D", "init_truncated_normal"]
