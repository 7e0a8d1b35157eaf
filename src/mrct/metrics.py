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

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import uniform_filter

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
    pred, target : array_like or torch.Tensor, shape (H, W) or (D, H, W)
        Synthetic and reference CT, HU.
    mask : array_like or torch.Tensor, same shape
        Body mask; voxels with ``mask > 0`` are included. Must not be empty.
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


def _as_n1hw(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a real floating-point tensor, got {x.dtype}")
    if x.ndim == 3:
        return x.unsqueeze(1)
    if x.ndim == 4 and x.shape[1] == 1:
        return x
    raise ValueError(f"{name} must have shape (N, H, W) or (N, 1, H, W), got {tuple(x.shape)}")


def ssim_torch(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float | torch.Tensor,
    win_size: int = _WIN,
    k1: float = _K1,
    k2: float = _K2,
) -> torch.Tensor:
    """Differentiable 2D SSIM per batch item (same definition as :func:`ssim`).

    Box window of ``win_size x win_size`` applied with :func:`torch.nn.functional.conv2d`
    without padding, so the map covers exactly the pixels kept by skimage's border crop;
    sample covariance (``NP / (NP - 1)``), ``C1 = (k1 R)^2``, ``C2 = (k2 R)^2``.

    Parameters
    ----------
    pred, target : torch.Tensor, shape (N, H, W) or (N, 1, H, W)
        Real floating-point images on the same device; H, W >= ``win_size``.
    data_range : float or torch.Tensor of shape () or (N,)
        Dynamic range ``R`` (same unit as the images), global or per item; must be positive.
    win_size : int, optional
        Odd window side, default 7.
    k1, k2 : float, optional
        SSIM constants, defaults 0.01 and 0.03.

    Returns
    -------
    torch.Tensor, shape (N,)
        Mean SSIM of each item, in the promoted dtype of ``pred`` and ``target``.
    """
    x = _as_n1hw(pred, "pred")
    y = _as_n1hw(target, "target")
    if x.shape != y.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    if x.device != y.device:
        raise ValueError(f"pred and target must be on the same device, got {x.device}, {y.device}")
    w = _check_win_size(win_size)
    n, _, h, wd = x.shape
    if min(h, wd) < w:
        raise ValueError(f"H and W must be >= win_size={w}, got shape {tuple(pred.shape)}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    x = x.to(dtype)
    y = y.to(dtype)

    if isinstance(data_range, torch.Tensor):
        dr = data_range.to(device=x.device, dtype=dtype)
        if dr.ndim == 0:
            dr = dr.expand(n)
        elif dr.shape != (n,):
            raise ValueError(
                f"data_range tensor must have shape () or (N,) = ({n},), got {tuple(dr.shape)}"
            )
    else:
        dr = torch.full((n,), _check_data_range(data_range), dtype=dtype, device=x.device)

    # One host sync for all value checks.
    with torch.no_grad():
        ok_x, ok_y, ok_r = torch.stack(
            [
                torch.isfinite(x).all(),
                torch.isfinite(y).all(),
                (torch.isfinite(dr) & (dr > 0)).all(),
            ]
        ).tolist()
    if not ok_x:
        raise ValueError("pred contains NaN or Inf; expected finite values")
    if not ok_y:
        raise ValueError("target contains NaN or Inf; expected finite values")
    if not ok_r:
        raise ValueError("data_range must be positive and finite for every item")

    # Variances/covariance are shift invariant: centre on the (constant) target mean to limit
    # cancellation in E[x^2] - E[x]^2 (matters in float32 for HU-scaled images), then add the
    # shift back to the means. Mathematically identical to skimage.
    shift = y.detach().mean(dim=(1, 2, 3), keepdim=True)
    xc = x - shift
    yc = y - shift
    np_win = w * w
    cov_norm = np_win / (np_win - 1)
    kernel = torch.full((5, 1, w, w), 1.0 / np_win, dtype=dtype, device=x.device)
    stats = F.conv2d(torch.cat([xc, yc, xc * xc, yc * yc, xc * yc], dim=1), kernel, groups=5)
    ux, uy, uxx, uyy, uxy = stats.unbind(dim=1)  # each (N, H - w + 1, W - w + 1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    ux = ux + shift[:, 0]
    uy = uy + shift[:, 0]
    dr = dr.view(n, 1, 1)
    c1 = (k1 * dr) ** 2
    c2 = (k2 * dr) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(-2, -1))


class SSIMLoss(torch.nn.Module):
    """``1 - mean SSIM`` over a batch, for training (see :func:`ssim_torch`).

    Parameters
    ----------
    win_size : int, optional
        Odd window side, default 7.
    k1, k2 : float, optional
        SSIM constants, defaults 0.01 and 0.03.
    """

    def __init__(self, win_size: int = _WIN, k1: float = _K1, k2: float = _K2):
        super().__init__()
        self.win_size = _check_win_size(win_size)
        self.k1 = float(k1)
        self.k2 = float(k2)

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        data_range: float | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return the scalar loss ``1 - ssim_torch(pred, target, data_range).mean()``.

        Parameters
        ----------
        pred, target : torch.Tensor, shape (N, H, W) or (N, 1, H, W)
            Prediction and reference.
        data_range : float or torch.Tensor of shape () or (N,), optional
            Dynamic range; defaults to the per-item maximum of ``target`` (fastMRI
            convention), treated as a constant (no gradient).

        Returns
        -------
        torch.Tensor, shape ()
            Loss in [0, 2]; 0 for identical inputs.
        """
        if data_range is None:
            t = _as_n1hw(target, "target")
            data_range = t.detach().amax(dim=(1, 2, 3))
        s = ssim_torch(pred, target, data_range, self.win_size, self.k1, self.k2)
        return 1 - s.mean()


# ---------------------------------------------------------------------------------------------
# SynthRAD2023 names (the challenge's metric names; thin wrappers of the masked_* functions)
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
from .metrics_ultrasound import cnr, contrast_ratio, gcnr, rayleigh_ks, speckle_snr  # noqa: E402
