"""RF to B-mode: IQ demodulation, envelope, log compression, scan conversion, mu-law.

Beamformed images have depth (time) along rows, so the default axis of :func:`envelope` is
``-2``; channel data has time along the last axis. Everything works on torch tensors (CPU or
CUDA) and keeps gradients where the operation is differentiable.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .beamform import LinearGrid, PolarGrid

__all__ = [
    "analytic_signal",
    "iq_demodulate",
    "envelope",
    "log_compress",
    "scan_convert",
    "compand",
    "expand",
]


def _tensor(x) -> torch.Tensor:
    t = torch.as_tensor(x)
    if not (t.is_floating_point() or t.is_complex()):
        t = t.double()
    return t


def analytic_signal(rf, axis: int = -2) -> torch.Tensor:
    """``rf + i H[rf]`` along ``axis`` (Hilbert transform by FFT, as scipy.signal.hilbert)."""
    x = _tensor(rf)
    if x.is_complex():
        raise TypeError("analytic_signal needs real RF data")
    n = x.shape[axis]
    spec = torch.fft.fft(x, dim=axis)
    h = torch.zeros(n, dtype=x.dtype, device=x.device)
    h[0] = 1
    if n % 2 == 0:
        h[n // 2] = 1
        h[1 : n // 2] = 2
    else:
        h[1 : (n + 1) // 2] = 2
    shape = [1] * x.ndim
    shape[axis] = n
    return torch.fft.ifft(spec * h.reshape(shape), dim=axis)


def iq_demodulate(rf, fs: float, fc: float, *, axis: int = -1, t0: float = 0.0,
                  cutoff: float | None = None) -> torch.Tensor:  # fmt: skip
    """Complex baseband (IQ) signal: mix down by ``fc`` and low-pass (ideal, ``cutoff`` MHz,
    default ``fc``), scaled so that ``|IQ|`` is the envelope.

    ``fs``, ``fc`` in MHz; ``t0`` the time of the first sample (us).
    """
    x = _tensor(rf)
    n = x.shape[axis]
    t = t0 + torch.arange(n, dtype=torch.float64, device=x.device) / fs
    shape = [1] * x.ndim
    shape[axis] = n
    mix = torch.exp(-2j * math.pi * fc * t).reshape(shape).to(torch.complex128)
    bb = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32) * mix
    f = torch.fft.fftfreq(n, 1.0 / fs, device=x.device)
    keep = (f.abs() <= (cutoff or fc)).to(bb.dtype).reshape(shape)
    iq = 2 * torch.fft.ifft(torch.fft.fft(bb, dim=axis) * keep, dim=axis)
    return iq.to(torch.complex64 if x.dtype == torch.float32 else torch.complex128)


def envelope(rf, axis: int = -2, method: str = "hilbert", **iq_kwargs) -> torch.Tensor:
    """Envelope of RF data along ``axis``: ``|analytic signal|`` (``method="hilbert"``) or
    ``|IQ|`` (``method="iq"``, needs ``fs`` and ``fc``); complex input (IQ) gives ``|x|``."""
    x = _tensor(rf)
    if x.is_complex():
        return x.abs()
    if method == "hilbert":
        return analytic_signal(x, axis).abs().to(x.dtype)
    if method == "iq":
        return iq_demodulate(x, axis=axis, **iq_kwargs).abs().to(x.dtype)
    raise ValueError(f'method must be "hilbert" or "iq", got {method!r}')


def log_compress(env, dynamic_range: float = 60.0, reference: float | None = None) -> torch.Tensor:
    """B-mode in dB: ``20 log10(env / reference)`` clipped to ``[-dynamic_range, 0]``.

    ``reference`` defaults to the maximum of ``env`` (per call).
    """
    e = _tensor(env).abs()
    if dynamic_range <= 0:
        raise ValueError(f"dynamic_range must be positive (dB), got {dynamic_range}")
    ref = float(e.max()) if reference is None else float(reference)
    if ref <= 0:
        return torch.full_like(e, -float(dynamic_range))
    db = 20 * torch.log10(torch.clamp(e / ref, min=10 ** (-dynamic_range / 20)))
    return torch.clamp(db, max=0.0)


def scan_convert(image, grid: PolarGrid, out: LinearGrid | None = None, *,
                 shape: tuple[int, int] = (256, 256), fill: float = 0.0):  # fmt: skip
    """Resample a sector image ``(..., n_radii, n_angles)`` on ``grid`` to a Cartesian grid.

    ``out`` is the target :class:`LinearGrid` (default: the sector's bounding box sampled
    ``shape``). Bilinear interpolation in ``(r, angle)``; pixels outside the sector get
    ``fill``. Returns ``(converted (..., nz, nx), out)``.
    """
    img = _tensor(image)
    if not isinstance(grid, PolarGrid):
        raise TypeError(f"grid must be a PolarGrid, got {type(grid).__name__}")
    if tuple(img.shape[-2:]) != grid.shape:
        raise ValueError(f"image must be (..., {grid.shape[0]}, {grid.shape[1]}), got {img.shape}")
    if out is None:
        px, pz = grid.points()
        out = LinearGrid(np.linspace(px.min(), px.max(), shape[1]),
                         np.linspace(pz.min(), pz.max(), shape[0]))  # fmt: skip
    zz, xx = np.meshgrid(out.z - grid.origin[1], out.x - grid.origin[0], indexing="ij")
    r, a = np.hypot(xx, zz), np.arctan2(xx, zz)

    # normalised coordinates for grid_sample (align_corners=True): -1 first, +1 last sample
    def norm(v, axis_vals):
        lo, hi = axis_vals[0], axis_vals[-1]
        if axis_vals.size == 1:
            return np.where(np.isclose(v, lo), 0.0, 2.0)
        if not np.all(np.diff(axis_vals) > 0):
            raise ValueError("scan_convert needs increasing, uniformly spaced radii and angles")
        return 2 * (v - lo) / (hi - lo) - 1

    g = np.stack([norm(a, grid.angles), norm(r, grid.radii)], axis=-1)
    lead = img.shape[:-2]
    flat = img.reshape((-1, 1) + grid.shape)
    real = flat.real if flat.is_complex() else flat
    gt = torch.as_tensor(g, dtype=real.dtype, device=img.device)[None].expand(
        flat.shape[0], -1, -1, -1
    )
    res = F.grid_sample(real, gt, mode="bilinear", padding_mode="zeros", align_corners=True)
    inside = torch.as_tensor((np.abs(g) <= 1).all(axis=-1), device=img.device)
    res = torch.where(inside, res, torch.as_tensor(fill, dtype=res.dtype, device=img.device))
    return res.reshape(lead + out.shape), out


def compand(x, mu: float = 255.0) -> torch.Tensor:
    """mu-law companding ``sign(x) ln(1 + mu |x|) / ln(1 + mu)`` (x in [-1, 1])."""
    t = _tensor(x)
    return torch.sign(t) * torch.log1p(mu * t.abs()) / math.log1p(mu)


def expand(y, mu: float = 255.0) -> torch.Tensor:
    """Inverse of :func:`compand`: ``sign(y) ((1 + mu)^|y| - 1) / mu``."""
    t = _tensor(y)
    return torch.sign(t) * torch.expm1(t.abs() * math.log1p(mu)) / mu
