"""Radial k-space <-> parallel-beam sinogram (Fourier slice theorem).

The Primal-Dual UNet paper (Ernst et al., 2023) treats radial MRI like sparse-view CT: a
centred 1D inverse FFT along each spoke of radial k-space gives the parallel-beam projection
of the image at the spoke's angle, so CT tools (FBP, sinogram-domain networks) apply.

With :func:`mrct.physics.radial_trajectory`'s orientation (spoke angle ``theta`` samples
``k = omega (-sin theta, cos theta)``, ``omega = 2 pi (s - n/2) / n`` radians per pixel) and
NUFFT samples ``F(k) = sum_r x[r] exp(-i k . r)``, the projection at detector coordinate
``t`` (mm) is ``p(t) = (pixel_size / n) sum_s F(omega_s) exp(i omega_s t / pixel_size)``.
Evaluating it at the detector bin centres of ``ParallelBeam(theta, n, pixel_size)``,
``t_m = (m - (n - 1) / 2) pixel_size``, is a centred inverse DFT after a half-bin phase shift.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .geometry import ParallelBeam

__all__ = ["radial_to_sinogram", "sinogram_to_radial"]


def radial_phase(n: int, angles: np.ndarray, image_shape) -> np.ndarray:
    """Phase (n_spokes, n), complex128, that moves NUFFT samples to the CT conventions.

    Two half-pixel shifts: detector bins are centred at ``(n - 1) / 2`` (the inverse DFT gives
    ``n // 2``), and the NUFFT's pixel offsets are taken from index ``N // 2`` while CT world
    coordinates are centred at ``(N - 1) / 2``: ``k . r_nufft = k . r_ct - (k_row dy + k_col dx)``
    with ``dy = H // 2 - (H - 1) / 2`` (rows run along -y) and ``dx = W // 2 - (W - 1) / 2``.
    """
    H, W = image_shape
    omega = 2 * math.pi * (np.arange(n) - n // 2) / n
    det_shift = n // 2 - (n - 1) / 2
    dy, dx = H // 2 - (H - 1) / 2, W // 2 - (W - 1) / 2
    k_row = -np.sin(angles)[:, None] * omega[None, :]
    k_col = np.cos(angles)[:, None] * omega[None, :]
    return np.exp(1j * (omega[None, :] * det_shift - (k_row * dy + k_col * dx)))


def _phase(n: int, angles: np.ndarray, image_shape, device, dtype) -> torch.Tensor:
    return torch.as_tensor(radial_phase(n, angles, image_shape), device=device).to(dtype)


def radial_to_sinogram(kspace: torch.Tensor, angles, image_shape, pixel_size: float = 1.0):
    """Turn radial k-space ``(..., n_spokes, n_samples)`` into a parallel-beam sinogram.

    Parameters
    ----------
    kspace : complex tensor (..., n_spokes, n_samples)
        Samples of ``F(k) = sum_r x[r] exp(-i k . r)`` on the spokes of
        :func:`mrct.physics.radial_trajectory` (sample ``n // 2`` at k = 0).
    angles : array or tensor (n_spokes,)
        Spoke angles in radians (:func:`mrct.physics.radial_angles`).
    image_shape : (H, W)
        Shape of the image the k-space belongs to (fixes the half-pixel centre offsets).
    pixel_size : float
        Image pixel size in mm; also the detector spacing.

    Returns
    -------
    sino : complex tensor (..., n_spokes, n_samples)
        Projections of the (complex) image, line integrals in mm times the image's units.
        Take ``.real`` for a real image.
    geometry : ParallelBeam
        ``ParallelBeam(angles, n_samples, pixel_size)``; ``Radon(geometry, (H, W),
        pixel_size).fbp(sino.real)`` reconstructs the image.
    """
    if not isinstance(kspace, torch.Tensor) or not kspace.is_complex():
        raise TypeError("kspace must be a complex torch tensor (..., n_spokes, n_samples)")
    angles = np.asarray(angles.detach().cpu() if hasattr(angles, "detach") else angles, float)
    if kspace.ndim < 2 or kspace.shape[-2] != angles.shape[0]:
        raise ValueError(
            f"kspace must be (..., n_spokes={angles.shape[0]}, n_samples), got "
            f"{tuple(kspace.shape)}"
        )
    n = kspace.shape[-1]
    spec = kspace * _phase(n, angles, tuple(image_shape), kspace.device, kspace.dtype)
    sino = torch.fft.fftshift(torch.fft.ifft(torch.fft.ifftshift(spec, dim=-1), dim=-1), dim=-1)
    return sino * pixel_size, ParallelBeam(angles, n, pixel_size)


def sinogram_to_radial(sino: torch.Tensor, angles, image_shape, pixel_size: float = 1.0):
    """Inverse of :func:`radial_to_sinogram`: sinogram ``(..., n_spokes, n)`` -> radial k-space."""
    angles = np.asarray(angles.detach().cpu() if hasattr(angles, "detach") else angles, float)
    if not isinstance(sino, torch.Tensor):
        raise TypeError("sino must be a torch tensor (..., n_spokes, n_samples)")
    if not sino.is_complex():
        sino = sino.to(torch.complex128 if sino.dtype == torch.float64 else torch.complex64)
    n = sino.shape[-1]
    spec = torch.fft.fftshift(torch.fft.fft(torch.fft.ifftshift(sino, dim=-1), dim=-1), dim=-1)
    ph = _phase(n, angles, tuple(image_shape), sino.device, sino.dtype)
    return spec * ph.conj() / pixel_size
