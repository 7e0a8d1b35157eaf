"""Input checks, constants and the SSIM map shared by the metrics (Wang et al. defaults)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.ndimage import uniform_filter

# skimage / Wang et al. defaults.
_K1 = 0.01
_K2 = 0.03
_WIN = 7
# SynthRAD2023 population-wide CT range, HU.
_SYNTHRAD_RANGE = (-1024.0, 3000.0)


# ---------------------------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------------------------


def _to_float64(x, name: str) -> np.ndarray:
    """Convert a numpy array, torch tensor or array-like to a finite real float64 array."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise ValueError(f"{name} must be real-valued (e.g. a magnitude image), got {x.dtype}")
        arr = x.detach().to(device="cpu", dtype=torch.float64).numpy()
    else:
        arr = np.asarray(x)
        if np.iscomplexobj(arr):
            raise ValueError(
                f"{name} must be real-valued (e.g. a magnitude image), got {arr.dtype}"
            )
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
        arr = arr.astype(np.float64, copy=False)
    if arr.size == 0:
        raise ValueError(f"{name} must be non-empty, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf; expected finite values")
    return arr


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    p = _to_float64(pred, "pred")
    t = _to_float64(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape, got {p.shape} and {t.shape}")
    return p, t


def _check_data_range(data_range, what: str = "data_range") -> float:
    try:
        r = float(data_range)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be a positive finite number, got {data_range!r}") from err
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"{what} must be a positive finite number, got {r}")
    return r


def _default_range(t: np.ndarray, data_range) -> float:
    # fastMRI: maxval = gt.max() over the whole volume (NOT max - min).
    if data_range is None:
        r = float(t.max())
        if not r > 0:
            raise ValueError(
                f"default data_range = target.max() = {r} must be positive; "
                "pass data_range explicitly"
            )
        return r
    return _check_data_range(data_range)


def _check_win_size(win_size) -> int:
    if isinstance(win_size, bool) or not isinstance(win_size, (int, np.integer)):
        raise ValueError(f"win_size must be an odd integer >= 3, got {win_size!r}")
    if win_size < 3 or win_size % 2 != 1:
        raise ValueError(f"win_size must be an odd integer >= 3, got {win_size}")
    return int(win_size)


def _check_dynamic_range(dynamic_range) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in dynamic_range)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"dynamic_range must be a pair (lo, hi) of finite numbers, got {dynamic_range!r}"
        ) from err
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"dynamic_range must be finite with lo < hi, got ({lo}, {hi})")
    return lo, hi


def _masked_inputs(pred, target, mask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p, t = _pair(pred, target)
    if p.ndim not in (2, 3):
        raise ValueError(f"expected 2D (H, W) or 3D (D, H, W) images, got shape {p.shape}")
    m = _to_float64(mask, "mask")
    if m.shape != p.shape:
        raise ValueError(
            f"mask must have the same shape as the images, got {m.shape} and {p.shape}"
        )
    m = m > 0  # SynthRAD2023: mask = np.where(mask > 0, 1., 0.)
    if not m.any():
        raise ValueError("mask is empty; expected at least one voxel with mask > 0")
    return p, t, m


# ---------------------------------------------------------------------------------------------
# SSIM core (numpy, float64)
# ---------------------------------------------------------------------------------------------


def _ssim_full(
    x: np.ndarray, y: np.ndarray, data_range: float, size: Sequence[int], k1: float, k2: float
) -> np.ndarray:
    """SSIM map with a box window of per-axis ``size`` (axes of size 1 are not filtered).

    Same operations, in the same order, as ``skimage.metrics.structural_similarity``.
    """
    np_win = math.prod(size)  # NP, number of pixels in the window
    cov_norm = np_win / (np_win - 1)  # sample covariance
    ux = uniform_filter(x, size=size)
    uy = uniform_filter(y, size=size)
    uxx = uniform_filter(x * x, size=size)
    uyy = uniform_filter(y * y, size=size)
    uxy = uniform_filter(x * y, size=size)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    a1 = 2 * ux * uy + c1
    a2 = 2 * vxy + c2
    b1 = ux**2 + uy**2 + c1
    b2 = vx + vy + c2
    return (a1 * a2) / (b1 * b2)


def ssim_map(
    pred,
    target,
    data_range: float,
    win_size: int = _WIN,
    *,
    k1: float = _K1,
    k2: float = _K2,
) -> np.ndarray:
    """Full (uncropped) SSIM map, as ``structural_similarity(target, pred, full=True)[1]``.

    Parameters
    ----------
    pred, target : array_like or torch.Tensor, shape (H, W) or (D, H, W)
        Images. Every dimension must be at least ``win_size``.
    data_range : float
        Dynamic range ``R`` of the images (same unit as the images); ``C1 = (k1 R)^2``,
        ``C2 = (k2 R)^2``.
    win_size : int, optional
        Side of the uniform window, odd; the window is ``win_size ** ndim`` pixels
        (7x7 in 2D, 7x7x7 in 3D).
    k1, k2 : float, optional
        SSIM stabilisation constants (Wang et al. 2004).

    Returns
    -------
    numpy.ndarray, float64, same shape as the inputs
        Per-pixel SSIM (dimensionless, at most 1). Border pixels within ``(win_size - 1) // 2``
        of an edge use reflected padding (``scipy.ndimage`` ``mode='reflect'``) and are
        normally cropped before averaging.
    """
    p, t = _pair(pred, target)
    if p.ndim not in (2, 3):
        raise ValueError(f"ssim_map expects 2D (H, W) or 3D (D, H, W) inputs, got shape {p.shape}")
    w = _check_win_size(win_size)
    if min(p.shape) < w:
        raise ValueError(f"every dimension must be >= win_size={w}, got shape {p.shape}")
    r = _check_data_range(data_range)
    return _ssim_full(t, p, r, (w,) * p.ndim, float(k1), float(k2))


# ---------------------------------------------------------------------------------------------
# fastMRI metrics
