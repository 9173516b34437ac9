"""Ultra-low-dose PET denoising (Xu et al. 2017) as a MONAI bundle: simulator, network, transforms, workflows."""

import logging as _logging
import warnings as _warnings

__version__ = "0.3.6"

# MONAI 1.6 announces on every image loader that an optional GPU DICOM decoder is absent; it is not used here.
_logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(_logging.ERROR)
_warnings.filterwarnings("ignore", message=".*NvImgCodecPydicomReader.*")

from .errors import install_error_reporting as _install_error_reporting  # noqa: E402

_install_error_reporting()
