"""Centred orthonormal FFTs on the trailing image axes, as in fastMRI and sigpy.

``fft2c(x) = fftshift(fft2(ifftshift(x), norm="ortho"))`` over the last two dimensions
(fastMRI ``fastmri/fftc.py``, sigpy ``sigpy.fft(..., center=True)``): the array centre (index
``n // 2`` on each axis) is both the spatial origin and the zero frequency, and the transform is
unitary, so ``ifft2c`` is its inverse and its adjoint and Parseval holds,
``||fft2c(x)|| == ||x||``. Explicitly, on an axis of length ``n``,

    X[k] = n^(-1/2) sum_m x[m] exp(-2 pi i (k - n//2) (m - n//2) / n).

Unlike fastMRI, complex data are native complex tensors (``complex64``/``complex128``), not a
trailing real/imaginary axis of size 2.
"""

from __future__ import annotations

import torch

from ..errors import DTypeError
from .operator import Identity, LinearOperator

__all__ = [
    "fft2c",
    "ifft2c",
    "fft3c",
    "ifft3c",
    "fftnc",
    "ifftnc",
    "FFT2c",
    "FFT3c",
]

_COMPLEX_OF = {
    torch.float16: torch.complex64,
    torch.bfloat16: torch.complex64,
    torch.float32: torch.complex64,
    torch.float64: torch.complex128,
}


def as_complex(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Return ``x`` as a complex tensor: real floats are promoted (float64 -> complex128, other
    floats -> complex64), complex tensors pass through unchanged.

    Raises
    ------
    TypeError
        If ``x`` is not a tensor or has an integer or boolean dtype.
    """
    if not isinstance(x, torch.Tensor):
        raise DTypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.is_complex():
        if x.dtype not in (torch.complex64, torch.complex128):
            raise DTypeError(f"{name} must be complex64 or complex128, got {x.dtype}")
        return x
    if x.dtype in _COMPLEX_OF:
        return x.to(_COMPLEX_OF[x.dtype])
    raise DTypeError(
        f"{name} must be complex (complex64/complex128) or real floating point, got {x.dtype}"
    )


def _dims(x: torch.Tensor, ndim: int, name: str) -> tuple[int, ...]:
    if x.ndim < ndim:
        raise ValueError(
            f"{name} must have at least {ndim} dimensions (the last {ndim} are transformed), "
            f"got shape {tuple(x.shape)}"
        )
    return tuple(range(-ndim, 0))


def fftnc(x: torch.Tensor, dim: tuple[int, ...]) -> torch.Tensor:
    """Centred orthonormal FFT over the dimensions ``dim`` (real input is promoted)."""
    x = as_complex(x)
    if x.numel() == 0:  # an empty batch (MKL rejects zero-length transforms)
        return x.clone()
    x = torch.fft.ifftshift(x, dim=dim)
    x = torch.fft.fftn(x, dim=dim, norm="ortho")
    return torch.fft.fftshift(x, dim=dim)


def ifftnc(x: torch.Tensor, dim: tuple[int, ...]) -> torch.Tensor:
    """Centred orthonormal inverse FFT over ``dim``; the inverse and adjoint of :func:`fftnc`."""
    x = as_complex(x)
    if x.numel() == 0:
        return x.clone()
    x = torch.fft.ifftshift(x, dim=dim)
    x = torch.fft.ifftn(x, dim=dim, norm="ortho")
    return torch.fft.fftshift(x, dim=dim)


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2D FFT over the last two dimensions.

    Parameters
    ----------
    x : Tensor, shape (..., H, W)
        Image (complex64/complex128; float32/float64 are promoted to complex).

    Returns
    -------
    Tensor, shape (..., H, W)
        k-space with the zero frequency at index ``(H // 2, W // 2)``.
    """
    return fftnc(x, _dims(x, 2, "x"))


def ifft2c(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal inverse 2D FFT over the last two dimensions (inverse of
    :func:`fft2c`); ``(..., H, W)`` k-space -> ``(..., H, W)`` image."""
    return ifftnc(x, _dims(x, 2, "x"))


def fft3c(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 3D FFT over the last three dimensions ``(..., D, H, W)``."""
    return fftnc(x, _dims(x, 3, "x"))


def ifft3c(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal inverse 3D FFT over the last three dimensions (inverse of
    :func:`fft3c`)."""
    return ifftnc(x, _dims(x, 3, "x"))


class _CentredFFT(LinearOperator):
    """A unitary centred DFT over the last ``len(axes)`` dimensions as an operator."""

    _axes: str  # the dimensions, as error messages name them: "(H, W)"
    _fwd = _inv = staticmethod(lambda x: x)

    def __init__(self, shape, name: str):
        if shape is not None:
            shape = tuple(int(s) for s in shape)
            if len(shape) != self._axes.count(",") + 1:
                raise ValueError(f"{name} must be {self._axes}, got {shape}")
        super().__init__(shape, shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fwd(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._inv(y)

    def normal(self) -> LinearOperator:
        return Identity(self.in_shape, self.in_shape)


class FFT2c(_CentredFFT):
    """The unitary centred 2D DFT :func:`fft2c` as an operator; ``adjoint`` is :func:`ifft2c`.

    Parameters
    ----------
    image_shape : (H, W), optional
        Fixes ``in_shape``/``out_shape`` (for :meth:`opnorm`); any shape works when omitted.
    """

    _axes, _fwd, _inv = "(H, W)", staticmethod(fft2c), staticmethod(ifft2c)

    def __init__(self, image_shape: tuple[int, int] | None = None):
        super().__init__(image_shape, "image_shape")


class FFT3c(_CentredFFT):
    """The unitary centred 3D DFT :func:`fft3c` as an operator; ``adjoint`` is :func:`ifft3c`.

    Parameters
    ----------
    volume_shape : (D, H, W), optional
        Fixes ``in_shape``/``out_shape``; any shape works when omitted.
    """

    _axes, _fwd, _inv = "(D, H, W)", staticmethod(fft3c), staticmethod(ifft3c)

    def __init__(self, volume_shape: tuple[int, int, int] | None = None):
        super().__init__(volume_shape, "volume_shape")
