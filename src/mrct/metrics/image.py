"""fastMRI's NMSE, PSNR and SSIM on numpy arrays (exact definitions, see :mod:`mrct.metrics`)."""

from __future__ import annotations

import math

import numpy as np

from ._common import (
    _K1,
    _K2,
    _WIN,
    _default_range,
    _pair,
    _ssim_full,
)

# ---------------------------------------------------------------------------------------------


def nmse(pred, target) -> float:
    """Normalized mean squared error, fastMRI definition.

    ``NMSE = ||target - pred||_F^2 / ||target||_F^2`` over the whole array, in float64.

    Parameters
    ----------
    pred, target : array_like or torch.Tensor, any identical shape
        Prediction and reference.

    Returns
    -------
    float
        Dimensionless NMSE (0 for a perfect prediction).
    """
    p, t = _pair(pred, target)
    denom = np.linalg.norm(t) ** 2
    if denom == 0:
        raise ValueError("target must have a non-zero norm for NMSE, got an all-zero target")
    return float(np.linalg.norm(t - p) ** 2 / denom)


def _psnr_from_mse(mse: float, data_range: float) -> float:
    if mse == 0:
        return math.inf
    return float(10 * np.log10(data_range**2 / mse))


def psnr(pred, target, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio, fastMRI definition.

    ``PSNR = 10 log10(R^2 / MSE)`` with the MSE over the whole volume in float64, equal to
    ``skimage.metrics.peak_signal_noise_ratio(target, pred, data_range=R)``.

    Parameters
    ----------
    pred, target : array_like or torch.Tensor, any identical shape
        Prediction and reference.
    data_range : float, optional
        Peak value ``R`` (same unit as the images). Defaults to ``target.max()`` over the whole
        volume, as in fastMRI (not ``max - min``); it must be positive.

    Returns
    -------
    float
        PSNR in dB; ``inf`` when ``pred == target``.
    """
    p, t = _pair(pred, target)
    r = _default_range(t, data_range)
    mse = np.mean((t - p) ** 2, dtype=np.float64)
    return _psnr_from_mse(float(mse), r)


def ssim(pred, target, data_range: float | None = None) -> float:
    """Structural similarity, fastMRI definition (mean of 2D slice SSIMs).

    Each slice's SSIM is ``skimage.metrics.structural_similarity(target[s], pred[s],
    data_range=R)`` with its defaults (7x7 box window, K1 = 0.01, K2 = 0.03, sample
    covariance, map cropped by 3 px on every border, mean in float64).

    Parameters
    ----------
    pred, target : array_like or torch.Tensor, shape (H, W) or (S, H, W)
        Prediction and reference; a 3D input is a stack of S slices, H, W >= 7.
    data_range : float, optional
        Dynamic range ``R`` (same unit as the images). Defaults to ``target.max()`` over the
        whole volume, as in fastMRI (not ``max - min``); it must be positive.

    Returns
    -------
    float
        Mean SSIM (dimensionless, at most 1).
    """
    p, t = _pair(pred, target)
    if p.ndim not in (2, 3):
        raise ValueError(f"ssim expects 2D (H, W) or 3D (S, H, W) inputs, got shape {p.shape}")
    if min(p.shape[-2:]) < _WIN:
        raise ValueError(f"H and W must be >= win_size={_WIN}, got shape {p.shape}")
    r = _default_range(t, data_range)
    if p.ndim == 2:
        p, t = p[None], t[None]
    # Window (1, 7, 7): uniform_filter skips size-1 axes, so this is the 2D SSIM of every slice.
    s = _ssim_full(t, p, r, (1, _WIN, _WIN), _K1, _K2)
    pad = (_WIN - 1) // 2
    per_slice = s[:, pad:-pad, pad:-pad].mean(axis=(1, 2), dtype=np.float64)
    return float(per_slice.mean())


# ---------------------------------------------------------------------------------------------
# SynthRAD2023 masked metrics
