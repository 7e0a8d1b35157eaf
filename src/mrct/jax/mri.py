"""MRI operators as JAX functions: NUFFT (host kernels), Cartesian and SENSE (plain jnp).

* :func:`nufft` wraps :class:`mrct.physics.NUFFT`: type 2 (image -> samples) and type 1
  (its exact adjoint) run mrct's Numba gridding kernels and ``scipy.fft`` on the host; the
  Toeplitz normal operator ``F^H diag(w) F`` is ``jnp`` FFTs of size (2H, 2W).
* :func:`cartesian` and :func:`sense` are masked centred orthonormal FFTs written in ``jnp``
  (XLA-native on every backend; JAX differentiates and batches them itself).
* :func:`radial_to_sinogram` / :func:`sinogram_to_radial`: radial k-space <-> parallel-beam
  sinogram (Fourier slice theorem), as :mod:`mrct.physics.radial_sinogram`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import torch

from ..physics.geometry import ParallelBeam
from ..physics.nufft import NUFFT as _TorchNUFFT
from ..physics.nufft import ToeplitzNormal as _TorchToeplitz
from ..physics.radial_sinogram import radial_phase
from ._host import HostLinear, host_linear
from ._operator import Operator, complex_dtype_of, real_dtype_of

__all__ = [
    "NUFFT",
    "nufft",
    "Cartesian",
    "cartesian",
    "sense",
    "SenseNUFFT",
    "fft2c",
    "ifft2c",
    "fftnc",
    "ifftnc",
    "radial_to_sinogram",
    "sinogram_to_radial",
]


def _as_complex(x):
    x = jnp.asarray(x)
    return x if jnp.iscomplexobj(x) else x.astype(complex_dtype_of(x.dtype))


def _check_trailing(x, trailing, name, what):
    n = len(trailing)
    if x.ndim < n or tuple(x.shape[x.ndim - n :]) != tuple(trailing):
        raise ValueError(
            f"{name} must have shape (..., {', '.join(map(str, trailing))}) ({what}), "
            f"got {tuple(x.shape)}"
        )


def fftnc(x, axes):
    """Centred orthonormal FFT over ``axes`` (real input is promoted to complex)."""
    x = _as_complex(x)
    x = jnp.fft.ifftshift(x, axes=axes)
    x = jnp.fft.fftn(x, axes=axes, norm="ortho")
    return jnp.fft.fftshift(x, axes=axes)


def ifftnc(x, axes):
    """Centred orthonormal inverse FFT over ``axes``; the inverse and adjoint of fftnc."""
    x = _as_complex(x)
    x = jnp.fft.ifftshift(x, axes=axes)
    x = jnp.fft.ifftn(x, axes=axes, norm="ortho")
    return jnp.fft.fftshift(x, axes=axes)


def fft2c(x):
    """Centred orthonormal 2D FFT over the last two axes (as :func:`mrct.physics.fft2c`)."""
    return fftnc(x, (-2, -1))


def ifft2c(x):
    """Centred orthonormal inverse 2D FFT over the last two axes."""
    return ifftnc(x, (-2, -1))


# -- NUFFT -------------------------------------------------------------------------------------
class NUFFT(Operator):
    """2D NUFFT: complex images ``(..., H, W)`` -> samples ``(..., *traj.shape[:-1])``.

    Same contract as :class:`mrct.physics.NUFFT` (no density compensation, no scaling;
    complex64/complex128, real input promoted). The trajectory is static (a numpy array).
    Build it with :func:`nufft`.
    """

    def __init__(self, traj, image_shape, eps: float = 1e-6):
        traj = np.asarray(traj)
        self.torch_op = op = _TorchNUFFT(torch.from_numpy(traj.copy()), image_shape, eps,
                                         backend="cpu")  # fmt: skip
        self.traj = traj
        self.eps = op.eps
        self.image_shape = op.image_shape
        self.in_shape, self.out_shape = op.image_shape, tuple(op.out_shape)
        self._lin = HostLinear(op._type2, op._type1, self.in_shape, self.out_shape,
                               complex=True, name="nufft")  # fmt: skip
        self._toeplitz: dict = {}

    def __call__(self, x):
        """Type 2: images ``(..., H, W)`` -> samples ``(..., *traj.shape[:-1])``."""
        x = _as_complex(x)
        _check_trailing(x, self.in_shape, "x", "an image")
        return host_linear(x, self._lin)

    def adjoint(self, y, weights=None):
        """Type 1: samples -> images. ``weights`` (density compensation, real, shape
        ``traj.shape[:-1]``) multiply the samples first: ``F^H diag(w) y`` (gridding)."""
        y = _as_complex(y)
        _check_trailing(y, self.out_shape, "y", "k-space samples")
        if weights is not None:
            y = y * jnp.asarray(weights).astype(real_dtype_of(y.dtype))
        return host_linear(y, self._lin, adjoint=True)

    def toeplitz_kernel(self, weights=None) -> np.ndarray:
        """FFT (2H, 2W) of the Toeplitz kernel of ``F^H diag(w) F`` (complex128 numpy)."""
        key = None if weights is None else np.asarray(weights).tobytes()
        k = self._toeplitz.get(key)
        if k is None:
            w = None if weights is None else torch.from_numpy(np.array(weights))
            k = _TorchToeplitz(self.torch_op, w).kernel_ft.numpy()
            self._toeplitz = {key: k}  # keep the last one
        return k

    def normal(self, x, weights=None):
        """``F^H diag(w) F x`` by Toeplitz embedding: two ``jnp`` FFTs of size (2H, 2W).

        ``weights`` (real, static: a numpy array, e.g. a density compensation) default to 1.
        Self-adjoint for real weights; differentiable and batchable by JAX itself.
        """
        x = _as_complex(x)
        _check_trailing(x, self.in_shape, "x", "an image")
        H, W = self.image_shape
        kft = jnp.asarray(self.toeplitz_kernel(weights), dtype=x.dtype)
        spec = jnp.fft.fft2(x, s=(2 * H, 2 * W), axes=(-2, -1))
        return jnp.fft.ifft2(spec * kft, axes=(-2, -1))[..., :H, :W]


def nufft(traj, image_shape, eps: float = 1e-6) -> NUFFT:
    """The 2D NUFFT on trajectory ``traj`` as a JAX operator.

    Parameters
    ----------
    traj : array (..., 2)
        k-space coordinates ``(k_row, k_col)`` in radians per pixel in ``[-pi, pi)``
        (e.g. :func:`mrct.physics.radial_trajectory`). Static.
    image_shape : (H, W)
    eps : requested relative accuracy (sets the kernel width).

    Returns
    -------
    NUFFT
        ``F(x)`` (type 2), ``F.adjoint(y, weights=None)`` (type 1, optional density
        compensation), ``F.normal(x, weights=None)`` (Toeplitz ``F^H diag(w) F``).
    """
    return NUFFT(traj, image_shape, eps)


# -- Cartesian and SENSE -----------------------------------------------------------------------
class Cartesian(Operator):
    """Masked centred 2D DFT, optionally with coil sensitivities (SENSE), in plain ``jnp``.

    Same contract as :class:`mrct.physics.CartesianMRI`: images ``(..., H, W)`` to k-space
    ``(..., H, W)`` (single coil) or ``(..., C, H, W)`` (SENSE); the computation runs in
    the input's complex dtype (real input promoted; mask and maps cast to it).
    """

    def __init__(self, mask, coil_maps=None, image_shape=None):
        mask = np.asarray(mask)
        if np.iscomplexobj(mask):
            raise TypeError(f"mask must be real (0/1 or real weights), got {mask.dtype}")
        if not np.issubdtype(mask.dtype, np.floating):
            mask = mask.astype(np.float32)
        if mask.ndim == 0:
            raise ValueError("mask must have shape (H, W), (1, W), (H, 1) or (W,), got a scalar")
        if mask.ndim == 1:
            mask = mask[None, :]
        if not np.all(np.isfinite(mask)):
            raise ValueError("mask contains NaN or Inf")
        hw = [n if n != 1 else None for n in mask.shape[-2:]]
        maps = None
        if coil_maps is not None:
            maps = np.asarray(coil_maps)
            if maps.ndim < 3:
                raise ValueError(
                    f"coil_maps must have shape (C, H, W) or (..., C, H, W), got {maps.shape}"
                )
            if not np.iscomplexobj(maps):
                maps = maps.astype(np.complex128 if maps.dtype == np.float64 else np.complex64)
            for k in (0, 1):
                if hw[k] is not None and maps.shape[k - 2] != hw[k]:
                    raise ValueError(
                        f"mask of shape {mask.shape} does not broadcast to the coil maps' "
                        f"spatial shape {maps.shape[-2:]}"
                    )
                hw[k] = maps.shape[k - 2]
        if image_shape is not None:
            image_shape = tuple(int(s) for s in image_shape)
            for k in (0, 1):
                if hw[k] is not None and hw[k] != image_shape[k]:
                    raise ValueError(f"image_shape {image_shape} does not match the mask/maps")
            hw = list(image_shape)
        self.image_shape = tuple(hw) if None not in hw else None
        self.mask, self.coil_maps = mask, maps
        self.n_coils = None if maps is None else maps.shape[-3]
        self.in_shape = self.image_shape
        if self.image_shape is None:
            self.out_shape = None
        else:
            self.out_shape = (
                self.image_shape if maps is None else (self.n_coils,) + self.image_shape
            )
        self._normal_axes = tuple(d for d in (-2, -1) if mask.shape[d] != 1) or (-1,)

    def _buffers(self, dtype):
        mask = jnp.asarray(self.mask, dtype=real_dtype_of(dtype))
        maps = None
        if self.coil_maps is not None:
            maps = jnp.asarray(self.coil_maps, dtype=dtype)
            if mask.ndim > 2:  # per-item masks (..., h, w): skip over the coil axis
                mask = mask[..., None, :, :]
        return mask, maps

    def __call__(self, x):
        """Image ``(..., H, W)`` -> k-space ``(..., H, W)`` or ``(..., C, H, W)``."""
        x = _as_complex(x)
        mask, maps = self._buffers(x.dtype)
        if maps is not None:
            x = x[..., None, :, :] * maps
        return mask * fftnc(x, (-2, -1))

    def adjoint(self, y):
        """k-space ``(..., H, W)`` or ``(..., C, H, W)`` -> image ``(..., H, W)``."""
        y = _as_complex(y)
        mask, maps = self._buffers(y.dtype)
        x = ifftnc(mask * y, (-2, -1))
        if maps is not None:
            x = jnp.sum(jnp.conj(maps) * x, axis=-3)
        return x

    def normal(self, x):
        """``A^H A x`` in one pass (1D FFTs only along the axes the mask varies on)."""
        x = _as_complex(x)
        mask, maps = self._buffers(x.dtype)
        ax = self._normal_axes
        if maps is None:
            return ifftnc(mask**2 * fftnc(x, ax), ax)
        z = ifftnc(mask**2 * fftnc(x[..., None, :, :] * maps, ax), ax)
        return jnp.sum(jnp.conj(maps) * z, axis=-3)


def cartesian(mask, coil_maps=None, image_shape=None) -> Cartesian:
    """Masked centred 2D DFT as a JAX operator (single coil, or SENSE with ``coil_maps``).

    ``mask`` is real, shape (H, W), (1, W), (H, 1) or (W,), or (..., h, w) for one mask per
    batch item; ``coil_maps`` complex (C, H, W) or (..., C, H, W). See
    :class:`mrct.physics.CartesianMRI`.
    """
    return Cartesian(mask, coil_maps, image_shape)


class SenseNUFFT(Operator):
    """Multi-coil non-Cartesian SENSE ``y_c = F (S_c x)``: (..., H, W) -> (..., C, *traj).

    As :class:`mrct.physics.SenseNUFFT`; the coils are one batched NUFFT call.
    ``normal(x, weights)`` is ``sum_c S_c^H F^H diag(w) F S_c`` by Toeplitz embedding.
    """

    def __init__(self, nufft_op: NUFFT, maps):
        maps = np.asarray(maps)
        if maps.ndim < 3 or tuple(maps.shape[-2:]) != nufft_op.image_shape:
            raise ValueError(
                f"coil maps must have shape (..., C, {nufft_op.image_shape[0]}, "
                f"{nufft_op.image_shape[1]}), got {maps.shape}"
            )
        if not np.iscomplexobj(maps):
            maps = maps.astype(np.complex128 if maps.dtype == np.float64 else np.complex64)
        self.nufft, self.coil_maps = nufft_op, maps
        self.n_coils = maps.shape[-3]
        self.image_shape = self.in_shape = nufft_op.image_shape
        self.out_shape = (self.n_coils,) + nufft_op.out_shape

    def _maps(self, dtype):
        return jnp.asarray(self.coil_maps, dtype=dtype)

    def __call__(self, x):
        """Image ``(..., H, W)`` -> samples ``(..., C, *traj_shape)``."""
        x = _as_complex(x)
        _check_trailing(x, self.in_shape, "x", "an image")
        return self.nufft(x[..., None, :, :] * self._maps(x.dtype))

    def adjoint(self, y, weights=None):
        """Samples ``(..., C, *traj_shape)`` -> image; optional density weights first."""
        y = _as_complex(y)
        _check_trailing(y, self.out_shape, "y", "multi-coil k-space samples")
        z = self.nufft.adjoint(y, weights)
        return jnp.sum(jnp.conj(self._maps(z.dtype)) * z, axis=-3)

    def normal(self, x, weights=None):
        """``sum_c S_c^H F^H diag(w) F S_c x`` (Toeplitz; ``weights`` static, real)."""
        x = _as_complex(x)
        maps = self._maps(x.dtype)
        return jnp.sum(jnp.conj(maps) * self.nufft.normal(x[..., None, :, :] * maps, weights), -3)


def sense(maps, mask):
    """Multi-coil SENSE operator.

    ``mask`` a Cartesian sampling mask (as for :func:`cartesian`): ``y_c = M F (S_c x)``,
    images (..., H, W) -> k-space (..., C, H, W). ``mask`` a :class:`NUFFT` (from
    :func:`nufft`): non-Cartesian SENSE, images -> samples (..., C, *traj_shape).
    """
    if isinstance(mask, NUFFT):
        return SenseNUFFT(mask, maps)
    return Cartesian(mask, coil_maps=maps)


# -- radial k-space <-> sinogram ---------------------------------------------------------------
def radial_to_sinogram(kspace, angles, image_shape, pixel_size: float = 1.0):
    """Radial k-space ``(..., n_spokes, n)`` -> complex parallel-beam sinogram, geometry.

    As :func:`mrct.physics.radial_to_sinogram` (a linear ``jnp`` function of ``kspace``).
    """
    angles = np.asarray(angles, dtype=np.float64)
    kspace = _as_complex(kspace)
    n = kspace.shape[-1]
    spec = kspace * jnp.asarray(radial_phase(n, angles, tuple(image_shape)), dtype=kspace.dtype)
    sino = jnp.fft.fftshift(jnp.fft.ifft(jnp.fft.ifftshift(spec, axes=-1), axis=-1), axes=-1)
    return sino * pixel_size, ParallelBeam(angles, n, pixel_size)


def sinogram_to_radial(sino, angles, image_shape, pixel_size: float = 1.0):
    """Inverse of :func:`radial_to_sinogram`: sinogram ``(..., n_spokes, n)`` -> k-space."""
    angles = np.asarray(angles, dtype=np.float64)
    sino = _as_complex(sino)
    n = sino.shape[-1]
    spec = jnp.fft.fftshift(jnp.fft.fft(jnp.fft.ifftshift(sino, axes=-1), axis=-1), axes=-1)
    ph = jnp.asarray(radial_phase(n, angles, tuple(image_shape)), dtype=sino.dtype)
    return spec * jnp.conj(ph) / pixel_size
