"""SynthRAD2023 metrics inside a body mask: MAE, PSNR and SSIM over the challenge's HU range."""

from __future__ import annotations

import numpy as np

from ._common import (
    _K1,
    _K2,
    _SYNTHRAD_RANGE,
    _WIN,
    _check_dynamic_range,
    _masked_inputs,
    _ssim_full,
)
from .image import _psnr_from_mse

# ---------------------------------------------------------------------------------------------


def masked_mae(pred, target, mask) -> float:
    """Mean absolute error inside a body mask, SynthRAD2023 definition.

    ``MAE = sum |target * m - pred * m| / sum m`` with ``m = (mask > 0)``; no clipping.

    Parameters
    ----------
    pred, target : array_like or torch.Tensor, shape (H, W) or (D, H, W)
        Synthetic and reference CT, HU.
    mask : array_like or torch.Tensor, same shape
        Body mask; voxels with ``mask > 0`` are included. Must not be empty.

    Returns
    -------
    float
        MAE in HU.
    """
    p, t, m = _masked_inputs(pred, target, mask)
    mf = m.astype(np.float64)
    return float(np.sum(np.abs(t * mf - p * mf)) / mf.sum())


def masked_psnr(pred, target, mask, dynamic_range: tuple[float, float] = _SYNTHRAD_RANGE) -> float:
    """PSNR inside a body mask, SynthRAD2023 definition (population range).

    Both images are clipped to ``dynamic_range = (lo, hi)``, only voxels with ``mask > 0`` are
    kept, and ``PSNR = 10 log10((hi - lo)^2 / MSE)``, i.e.
    ``peak_signal_noise_ratio(target[m], pred[m], data_range=hi - lo)``.

    Parameters
    ----------
    pred, target, mask
        As for :func:`masked_mae`.
    dynamic_range : (float, float), optional
        Clipping range ``(lo, hi)`` in HU; ``hi - lo`` (4024 HU by default) is the peak.

    Returns
    -------
    float
        PSNR in dB; ``inf`` when the clipped images agree on the mask.
    """
    p, t, m = _masked_inputs(pred, target, mask)
    lo, hi = _check_dynamic_range(dynamic_range)
    t = np.clip(t, lo, hi)[m]
    p = np.clip(p, lo, hi)[m]
    mse = np.mean((t - p) ** 2, dtype=np.float64)
    return _psnr_from_mse(float(mse), hi - lo)


def masked_ssim(pred, target, mask, dynamic_range: tuple[float, float] = _SYNTHRAD_RANGE) -> float:
    """SSIM averaged over a body mask, SynthRAD2023 definition.

    Steps (``image_metrics.py``): clip both images to ``(lo, hi)``; set voxels outside the mask
    to ``lo``; shift by ``-lo`` (when ``lo < 0``) to make them non-negative; compute the full
    SSIM map with ``data_range = hi - lo`` and a ``7**ndim`` box window (7x7x7 in 3D); crop 3
    voxels from every border of both map and mask; average the map over the cropped mask.

    Parameters
    ----------
    pred, target : array_like or torch.Tensor, shape (H, W) or (D, H, W)
        Synthetic and reference CT, HU. Every dimension must be >= 7.
    mask : array_like or torch.Tensor, same shape
        Body mask; voxels with ``mask > 0`` are included. Must contain at least one voxel
        at least 3 voxels away from every border.
    dynamic_range : (float, float), optional
        Clipping range ``(lo, hi)`` in HU, default ``(-1024, 3000)``.

    Returns
    -------
    float
        Masked mean SSIM (dimensionless, at most 1).
    """
    p, t, m = _masked_inputs(pred, target, mask)
    lo, hi = _check_dynamic_range(dynamic_range)
    if min(p.shape) < _WIN:
        raise ValueError(f"every dimension must be >= win_size={_WIN}, got shape {p.shape}")
    pad = (_WIN - 1) // 2
    crop = tuple(slice(pad, n - pad) for n in p.shape)
    m_crop = m[crop]
    if not m_crop.any():
        raise ValueError(
            f"mask is empty after cropping {pad} voxels from every border; "
            "expected mask voxels in the image interior"
        )
    t = np.where(m, np.clip(t, lo, hi), lo)
    p = np.where(m, np.clip(p, lo, hi), lo)
    if lo < 0:
        t = t - lo
        p = p - lo
    s = _ssim_full(t, p, hi - lo, (_WIN,) * p.ndim, _K1, _K2)
    return float(s[crop][m_crop].mean(dtype=np.float64))


# ---------------------------------------------------------------------------------------------
# differentiable SSIM (torch)
# ---------------------------------------------------------------------------------------------


def synthrad_mae(prediction, target, mask) -> float:
    """SynthRAD2023 MAE: ``sum |target*m - prediction*m| / sum m`` in HU, **unclipped**.

    Same as :func:`masked_mae` (``prediction``, ``target``: synthetic and reference CT in HU,
    shape (H, W) or (D, H, W); ``mask``: body mask, ``mask > 0`` counts). Returns HU.
    """
    return masked_mae(prediction, target, mask)


def synthrad_psnr(prediction, target, mask) -> float:
    """SynthRAD2023 PSNR: both images clipped to [-1024, 3000] HU, masked voxels only,
    peak 4024 HU (``use_population_range=True``). Same as :func:`masked_psnr`; returns dB."""
    return masked_psnr(prediction, target, mask, _SYNTHRAD_RANGE)


def synthrad_ssim(prediction, target, mask) -> float:
    """SynthRAD2023 SSIM: both images clipped to [-1024, 3000] HU, voxels outside the mask set
    to -1024, shifted by +1024, 7**ndim box window (7x7x7 for a volume), data range 4024, SSIM
    map averaged over the mask after a 3-voxel border crop. Same as :func:`masked_ssim`."""
    return masked_ssim(prediction, target, mask, _SYNTHRAD_RANGE)


# ultrasound metrics (gCNR, contrast, CNR, speckle statistics) live in their own module
