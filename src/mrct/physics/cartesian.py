"""Cartesian MRI forward model: single-coil and multi-coil SENSE.

With a real sampling mask ``M`` (0/1, or real weights), coil sensitivities ``S_c`` and the
centred orthonormal DFT ``F`` (:func:`mrct.physics.fft.fft2c`),

    single coil:  y = M F x
    SENSE:        y_c = M F (S_c x),                 c = 1..C
    adjoint:      x = sum_c conj(S_c) F^H (M y_c)    (M is real, so M^H = M)
    normal:       x = sum_c conj(S_c) F^H (M^2 F (S_c x))

(Pruessmann et al., MRM 42:952, 1999; the operator of sigpy's ``mri.linop.Sense`` and of
fastMRI's VarNet data consistency). The k-space layout is complex ``(..., H, W)`` (coil axis
``-3`` for SENSE). Like fastMRI, phase encoding runs along ``W``: a 1D undersampling mask from
:mod:`mrct.data.masks` has shape ``(1, W)`` and broadcasts over the ``H`` (readout) rows.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import MrctError, ShapeError
from .fft import as_complex, fftnc, ifftnc
from .operator import LinearOperator

__all__ = ["CartesianMRI", "rss"]

_REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}


def rss(x: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Root-sum-of-squares coil combination ``sqrt(sum_c |x_c|^2)`` (fastMRI's ``rss``).

    Parameters
    ----------
    x : Tensor, shape (..., C, H, W) for the default ``dim``
        Coil images, real or complex.
    dim : int
        The coil dimension.

    Returns
    -------
    Tensor, shape ``x.shape`` without ``dim``
        Real (float32 for complex64 input, float64 for complex128).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not (x.is_complex() or x.is_floating_point()):
        raise TypeError(f"x must be a real or complex floating-point tensor, got {x.dtype}")
    if x.ndim == 0 or not -x.ndim <= dim < x.ndim:
        raise ValueError(f"dim={dim} is out of range for x of shape {tuple(x.shape)}")
    return torch.sqrt(torch.sum(x.real**2 + x.imag**2 if x.is_complex() else x**2, dim=dim))


def _as_tensor(a, name: str) -> torch.Tensor:
    if isinstance(a, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(a))
    if isinstance(a, torch.Tensor):
        return a
    raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(a).__name__}")


class CartesianMRI(LinearOperator):
    """Masked centred 2D DFT, optionally with coil sensitivities (SENSE).

    Parameters
    ----------
    mask : Tensor or ndarray, real, shape (H, W), (1, W), (H, 1) or (W,); or (..., h, w)
        Sampling mask (1 = sampled; real weights are allowed). Trailing dimensions broadcast
        to ``(H, W)``; a 1D ``(W,)`` mask selects columns (phase-encoding lines) like a
        ``(1, W)`` mask. Extra leading dimensions give one mask per batch item: they broadcast
        against the image's batch dimensions (not against the coil axis). Boolean and integer
        masks are converted to floating point.
    coil_maps : Tensor or ndarray, complex, shape (C, H, W) or (..., C, H, W), optional
        Coil sensitivities ``S_c``; leading dimensions broadcast against the image's batch
        dimensions. ``None`` gives the single-coil model.
    image_shape : (H, W), optional
        Needed only when neither the mask nor the coil maps fix ``(H, W)`` (e.g. a ``(1, W)``
        mask without coil maps), for :meth:`opnorm` and a shape check.
    check_finite : bool
        Raise ``ValueError`` on NaN or Inf input (one extra pass over the data).

    Notes
    -----
    Shapes: ``forward`` maps images ``(..., H, W)`` to k-space ``(..., H, W)`` (single coil)
    or ``(..., C, H, W)`` (SENSE); ``adjoint`` maps back. The computation runs in the input's
    complex dtype (real float input is promoted to complex; the mask and maps are cast to it),
    so complex64 in gives complex64 out. Mask and maps are buffers: ``.to(device)`` moves them.
    ``normal()`` applies ``A^H A`` directly; for a column mask (constant along H) the FFT and
    inverse FFT along H cancel and only 1D FFTs along W are computed (likewise for a row mask).

    Examples
    --------
    >>> mask, _ = RandomMask([0.08], [4], seed=0)((640, 368))      # numpy (1, 368)
    >>> A = CartesianMRI(torch.from_numpy(mask), coil_maps=maps)    # maps (15, 640, 368)
    >>> y = A(x)                                                    # (..., 15, 640, 368)
    >>> x_zf = A.adjoint(y)                                         # (..., 640, 368)
    """

    def __init__(self, mask, coil_maps=None, image_shape=None, *, check_finite: bool = True):
        mask = _as_tensor(mask, "mask")
        if mask.is_complex():
            raise TypeError(f"mask must be real (0/1 or real weights), got {mask.dtype}")
        if not mask.is_floating_point():
            mask = mask.to(torch.float32)
        if mask.ndim == 0:
            raise ValueError("mask must have shape (H, W), (1, W), (H, 1) or (W,), got a scalar")
        if mask.ndim == 1:
            mask = mask[None, :]
        if not bool(torch.isfinite(mask).all()):
            raise ValueError("mask contains NaN or Inf")

        shape_hw = [None, None]
        for k in (0, 1):
            n = mask.shape[k - 2]
            if n != 1:
                shape_hw[k] = n
        if coil_maps is not None:
            coil_maps = as_complex(_as_tensor(coil_maps, "coil_maps"), "coil_maps")
            if coil_maps.ndim < 3:
                raise ValueError(
                    f"coil_maps must have shape (C, H, W) or (..., C, H, W), "
                    f"got {tuple(coil_maps.shape)}"
                )
            if not bool(torch.isfinite(coil_maps).all()):
                raise ValueError("coil_maps contains NaN or Inf")
            if coil_maps.device != mask.device:
                raise ValueError(
                    f"mask is on {mask.device} but coil_maps on {coil_maps.device}; "
                    "put both on the same device"
                )
            for k in (0, 1):
                n, m = coil_maps.shape[k - 2], shape_hw[k]
                if m is not None and n != m:
                    raise ValueError(
                        f"mask of shape {tuple(mask.shape)} does not broadcast to the coil maps' "
                        f"spatial shape {tuple(coil_maps.shape[-2:])}"
                    )
                shape_hw[k] = n
        if image_shape is not None:
            image_shape = tuple(int(s) for s in image_shape)
            if len(image_shape) != 2:
                raise ValueError(f"image_shape must be (H, W), got {image_shape}")
            for k in (0, 1):
                if shape_hw[k] is not None and shape_hw[k] != image_shape[k]:
                    raise ValueError(
                        f"image_shape {image_shape} does not match the mask/coil maps spatial "
                        f"shape; mask {tuple(mask.shape)}"
                        + (f", coil_maps {tuple(coil_maps.shape)}" if coil_maps is not None else "")
                    )
            shape_hw = list(image_shape)
        hw = tuple(shape_hw) if None not in shape_hw else None
        n_coils = None if coil_maps is None else coil_maps.shape[-3]
        out = None if hw is None else (hw if coil_maps is None else (n_coils,) + hw)
        super().__init__(hw, out)
        self.register_buffer("mask", mask)
        self.register_buffer("coil_maps", coil_maps)
        self.image_shape = hw
        self.n_coils = n_coils
        self.check_finite = check_finite
        # FFT axes that the mask does not commute with (see normal()): a mask constant along
        # an axis commutes with the 1D DFT along it.
        self._normal_dims = tuple(d for d in (-2, -1) if mask.shape[d] != 1) or (-1,)

    # -- validation ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        kind = "single coil" if self.coil_maps is None else f"{self.n_coils} coils"
        return f"{kind}, image_shape={self.image_shape}, mask={tuple(self.mask.shape)}"

    def _check(self, t: torch.Tensor, name: str, coil_axis: bool) -> torch.Tensor:
        t = as_complex(t, name)
        if t.device != self.mask.device:
            raise MrctError(
                f"{name} is on {t.device} but the operator's buffers are on {self.mask.device}; "
                "move one of them with .to(device)"
            )
        n = 3 if coil_axis else 2
        want = "(..., C, H, W)" if coil_axis else "(..., H, W)"
        if t.ndim < n:
            raise ShapeError(f"{name} must have shape {want}, got {tuple(t.shape)}")
        hw = self.image_shape
        if coil_axis and t.shape[-3] != self.n_coils:
            raise ShapeError(
                f"{name} must have {self.n_coils} coils on axis -3 (shape {want}), "
                f"got {tuple(t.shape)}"
            )
        if hw is not None and tuple(t.shape[-2:]) != hw:
            raise ShapeError(
                f"{name} must have spatial shape {hw} (shape {want}), got {tuple(t.shape)}"
            )
        if hw is None:
            for k in (0, 1):
                m = self.mask.shape[k - 2]
                if m != 1 and t.shape[k - 2] != m:
                    raise ShapeError(
                        f"{name} of shape {tuple(t.shape)} does not match the mask of shape "
                        f"{tuple(self.mask.shape)}"
                    )
        if self.check_finite and not bool(torch.isfinite(t).all()):
            raise MrctError(f"{name} contains NaN or Inf")
        return t

    def _buffers_for(self, t: torch.Tensor):
        """Mask (real dtype of ``t``, with a coil axis when needed) and maps (dtype of ``t``)."""
        mask = self.mask.to(_REAL_OF[t.dtype])
        maps = None
        if self.coil_maps is not None:
            maps = self.coil_maps.to(t.dtype)
            if mask.ndim > 2:  # per-item masks (..., h, w): skip over the coil axis
                mask = mask.unsqueeze(-3)
        return mask, maps

    # -- the operator -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``(..., H, W)`` -> k-space ``(..., H, W)`` or ``(..., C, H, W)``."""
        x = self._check(x, "x (image)", coil_axis=False)
        mask, maps = self._buffers_for(x)
        if maps is not None:
            x = x.unsqueeze(-3) * maps
        return mask * fftnc(x, (-2, -1))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """k-space ``(..., H, W)`` or ``(..., C, H, W)`` -> image ``(..., H, W)``."""
        y = self._check(y, "y (k-space)", coil_axis=self.coil_maps is not None)
        mask, maps = self._buffers_for(y)
        x = ifftnc(mask * y, (-2, -1))
        if maps is not None:
            x = torch.sum(maps.conj() * x, dim=-3)
        return x

    def normal(self) -> LinearOperator:
        """``A^H A`` applied in one pass (self-adjoint)."""
        return _CartesianNormal(self)


class _CartesianNormal(LinearOperator):
    """``A^H A = sum_c S_c^H F^H M^2 F S_c`` of a :class:`CartesianMRI` operator ``A``.

    A mask constant along H commutes with the 1D DFT along H, so for a column mask
    ``F^H M^2 F = F_W^H M^2 F_W`` and only 1D FFTs along W are needed.
    """

    def __init__(self, op: CartesianMRI):
        super().__init__(op.in_shape, op.in_shape)
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        op = self.op
        x = op._check(x, "x (image)", coil_axis=False)
        mask, maps = op._buffers_for(x)
        dims = op._normal_dims
        if maps is None:
            return ifftnc(mask.square() * fftnc(x, dims), dims)
        z = ifftnc(mask.square() * fftnc(x.unsqueeze(-3) * maps, dims), dims)
        return torch.sum(maps.conj() * z, dim=-3)

    adjoint = forward
