"""Ramp filters, windows and redundancy weights for FBP and FDK.

The ramp filter is the band-limited spatial kernel of Kak & Slaney, *Principles of
Computerized Tomographic Imaging* (1988), eq. (3.61): ``h(0) = 1 / (4 tau^2)``,
``h(n tau) = -1 / (n pi tau)^2`` for odd ``n`` and 0 for even ``n``, applied by FFT with zero
padding to at least twice the detector length, so there is no wrap-around and no DC offset
(the usual artefact of sampling ``|f|`` directly). For an equiangular (arc) fan detector the
kernel is ``(n alpha / sin(n alpha))^2 h(n alpha)`` (eq. 3.117).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["FILTERS", "ramp_kernel_fft", "apply_filter", "filter_numpy", "parker_weights"]

#: Frequency windows multiplying the ramp (``f`` in cycles per sample, ``|f| <= 1/2``).
FILTERS = {
    "ram-lak": lambda f: np.ones_like(f),
    "shepp-logan": lambda f: np.sinc(f),  # sin(pi f) / (pi f)
    "cosine": lambda f: np.cos(np.pi * f),
    "hamming": lambda f: 0.54 + 0.46 * np.cos(2 * np.pi * f),
    "hann": lambda f: 0.5 + 0.5 * np.cos(2 * np.pi * f),
}
_ALIASES = {"ramlak": "ram-lak", "ramp": "ram-lak", "shepp_logan": "shepp-logan",
            "hanning": "hann"}  # fmt: skip


def _filter_name(name: str) -> str:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in FILTERS:
        raise ValueError(f"unknown filter {name!r}; expected one of {sorted(FILTERS)}")
    return key


def ramp_kernel_fft(
    n_det: int,
    spacing: float,
    filter: str = "ram-lak",
    arc_spacing: float | None = None,
    frequency_scaling: float = 1.0,
) -> np.ndarray:
    """Frequency response (rfft, length P//2+1) of the windowed discrete ramp filter.

    Parameters
    ----------
    n_det : number of detector bins; the padded length is P = next power of two >= 2 n_det.
    spacing : sample spacing tau (mm), included so that convolution approximates the integral.
    filter : window name, see :data:`FILTERS`.
    arc_spacing : for an arc detector, the angular bin spacing alpha (rad); the kernel then is
        ``(n alpha / sin(n alpha))^2 h(n alpha)`` sampled at ``n alpha`` and ``spacing`` is
        ignored.
    frequency_scaling : cut-off as a fraction of the Nyquist frequency (0 < s <= 1).
    """
    if not 0 < frequency_scaling <= 1:
        raise ValueError(f"frequency_scaling must be in (0, 1], got {frequency_scaling}")
    P = max(64, 1 << int(math.ceil(math.log2(2 * n_det))))
    n = np.concatenate([np.arange(0, P // 2 + 1), np.arange(-(P // 2) + 1, 0)]).astype(np.float64)
    tau = arc_spacing if arc_spacing is not None else spacing
    h = np.zeros(P)
    h[0] = 1.0 / (4 * tau**2)
    odd = (n.astype(np.int64) % 2) == 1
    h[odd] = -1.0 / (np.pi * n[odd] * tau) ** 2
    if arc_spacing is not None:
        g = n * arc_spacing
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(n == 0, 1.0, (g / np.sin(g)) ** 2)
        h = h * factor
    response = np.real(np.fft.rfft(h)) * tau
    f = np.fft.rfftfreq(P)
    response = response * FILTERS[_filter_name(filter)](f)
    response[f > 0.5 * frequency_scaling] = 0.0
    return response


def apply_filter(proj: torch.Tensor, response: np.ndarray) -> torch.Tensor:
    """Convolve the last axis of ``proj`` with the filter of rfft response ``response``."""
    n = proj.shape[-1]
    P = 2 * (response.shape[0] - 1)
    resp = torch.as_tensor(response, dtype=proj.dtype, device=proj.device)
    spec = torch.fft.rfft(proj, n=P, dim=-1)
    return torch.fft.irfft(spec * resp, n=P, dim=-1)[..., :n]


def filter_numpy(proj: np.ndarray, response: np.ndarray, pad: int = 0, workers: int | None = None,
                 pre: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """:func:`apply_filter` on a numpy array through ``scipy.fft`` (no torch thread pool).

    ``proj`` (..., n) float32/float64 is multiplied by ``pre`` (broadcast, optional), filtered
    in its own precision, and returned as a new C-contiguous array (..., n + 2 pad) with
    ``pad`` zeros at each end of the last axis (the padded layout the CPU backprojection
    kernels read without bounds checks). ``workers``: threads for the FFTs.

    The CPU FBP uses this instead of torch.fft: torch's OpenMP pool spins after each parallel
    torch op, and with Numba's pool on the same few cores the next backprojection kernel
    then runs without its second thread (measured on 2 cores: 27 ms instead of 16 ms).
    """
    import scipy.fft

    n = proj.shape[-1]
    P = 2 * (response.shape[0] - 1)
    x = proj if pre is None else proj * pre.astype(proj.dtype, copy=False)
    spec = scipy.fft.rfft(x, n=P, axis=-1, workers=workers)
    spec *= response.astype(proj.dtype, copy=False)
    full = scipy.fft.irfft(spec, n=P, axis=-1, workers=workers, overwrite_x=True)
    out = np.empty(proj.shape[:-1] + (n + 2 * pad,), dtype=proj.dtype)
    if pad:
        out[..., :pad] = 0.0
        out[..., n + pad :] = 0.0
    out[..., pad : n + pad] = full[..., :n]
    return out


def parker_weights(angles: np.ndarray, fan_angles: np.ndarray, fan_half_angle: float):
    """Parker's short-scan weights (D. L. Parker, Med. Phys. 9(2), 1982), shape (V, N).

    In mrct's convention (docs/conventions.md) the ray (beta, gamma) is measured again as
    (beta + pi - 2 gamma, -gamma), so Parker's gamma is our ``-gamma``. Angles are taken
    relative to the first one. The weights of each pair of conjugate rays sum to one.
    """
    beta = (np.asarray(angles, dtype=np.float64) - float(np.min(angles)))[:, None]
    g = -np.asarray(fan_angles, dtype=np.float64)[None, :]
    d = fan_half_angle
    w = np.ones((beta.shape[0], g.shape[1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        rise = np.sin(np.pi / 4 * beta / (d - g)) ** 2
        fall = np.sin(np.pi / 4 * (np.pi + 2 * d - beta) / (d + g)) ** 2
    in_rise = beta < 2 * d - 2 * g
    in_fall = beta > np.pi - 2 * g
    w = np.where(in_rise, rise, w)
    w = np.where(in_fall, fall, w)
    w = np.where(beta > np.pi + 2 * d, 0.0, w)
    return np.nan_to_num(np.clip(w, 0.0, 1.0))
