"""Image-quality metrics with exact published definitions.

Two families of reference metrics are reproduced here, both computed in float64:

* **fastMRI** (``fastmri/evaluate.py``): :func:`nmse`, :func:`psnr` and :func:`ssim`, where the
  default dynamic range is the *volume maximum of the target* (``target.max()``, not
  ``max - min``) and the SSIM of a volume is the mean of the 2D SSIMs of its slices.
* **SynthRAD2023** (``functions/image_metrics.py``): :func:`masked_mae`, :func:`masked_psnr` and
  :func:`masked_ssim` on Hounsfield-unit images restricted to a binary body mask.

SSIM follows Wang et al. (2004) as implemented by ``skimage.metrics.structural_similarity`` with
its defaults: uniform (box) window of side 7, ``K1 = 0.01``, ``K2 = 0.03``, sample covariance
(``NP / (NP - 1)``) and a crop of ``(win_size - 1) // 2`` pixels on every border before averaging.
It is implemented here with :func:`scipy.ndimage.uniform_filter`, so scikit-image is not a
runtime dependency.

:func:`ssim_torch` and :class:`SSIMLoss` are differentiable torch versions of the same 2D SSIM,
for training; in float64 they agree with :func:`ssim` to rounding error.

All numpy-returning functions accept numpy arrays, torch tensors (any device, any real float
dtype) or array-likes, and raise :class:`ValueError` on a shape mismatch, a wrong number of
dimensions, NaN/Inf values, an empty mask or a non-positive data range.

References
----------
.. [1] Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
   structural similarity", IEEE TIP 13(4):600-612, 2004. doi:10.1109/TIP.2003.819861
.. [2] Zbontar et al., "fastMRI: An Open Dataset and Benchmarks for Accelerated MRI",
   arXiv:1811.08839, 2018 (``fastmri/evaluate.py``).
.. [3] Thummerer et al., "SynthRAD2023 Grand Challenge dataset: generating synthetic CT for
   radiotherapy", Med. Phys. 50(7), 2023 (``SynthRAD2023/metrics``, ``image_metrics.py``).
"""

from ._common import ssim_map
from .image import nmse, psnr, ssim
from .ssim_torch import SSIMLoss, ssim_torch
from .synthrad import (
    masked_mae,
    masked_psnr,
    masked_ssim,
    synthrad_mae,
    synthrad_psnr,
    synthrad_ssim,
)
from .ultrasound import cnr, contrast_ratio, gcnr, rayleigh_ks, speckle_snr

__all__ = [
    "nmse",
    "psnr",
    "ssim",
    "ssim_map",
    "masked_mae",
    "masked_psnr",
    "masked_ssim",
    "synthrad_mae",
    "synthrad_psnr",
    "synthrad_ssim",
    "ssim_torch",
    "SSIMLoss",
    "gcnr",
    "contrast_ratio",
    "cnr",
    "speckle_snr",
    "rayleigh_ks",
]
