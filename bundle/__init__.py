"""Ultra-low-dose PET denoising (Xu et al. 2017) as a MONAI bundle: simulator, network, transforms, workflows."""

__version__ = "0.1.0"
