"""``SenseNUFFT``: multi-coil non-Cartesian MRI forward model ``y_c = F (S_c x)``.

With coil sensitivities ``S_c`` and a 2D :class:`~mrct.physics.NUFFT` ``F``,

    forward:  y_c = F (S_c x),                          c = 1..C
    adjoint:  x = sum_c conj(S_c) F^H y_c
    normal:   x = sum_c conj(S_c) T_w (S_c x),          T_w = F^H diag(w) F (Toeplitz)

(Pruessmann et al., MRM 46:638, 2001, non-Cartesian SENSE; sigpy's ``mri.linop.Sense`` with a
``coord``). ``NUFFT @ Diagonal(coil_maps)`` does not express this operator: ``Diagonal``'s
adjoint does not sum over the coils. (It belongs next to :class:`~mrct.physics.CartesianMRI`
in :mod:`mrct.physics`; it lives here until it moves.)
"""

from __future__ import annotations

import torch

from ..errors import DTypeError, ShapeError
from .nufft import NUFFT
from .operator import LinearOperator

__all__ = ["SenseNUFFT"]

_COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128}


class SenseNUFFT(LinearOperator):
    """Coil sensitivities followed by a NUFFT: images ``(..., H, W)`` to ``(..., C, *traj)``.

    Parameters
    ----------
    nufft : NUFFT
        The single-coil transform (trajectory ``traj`` of shape ``(*traj_shape, 2)``).
    coil_maps : Tensor, complex, shape (C, H, W)
        Coil sensitivities on the NUFFT's image grid.

    Notes
    -----
    ``normal(weights)`` returns ``sum_c S_c^H F^H diag(w) F S_c`` through one Toeplitz kernel
    shared by all coils (:meth:`mrct.physics.NUFFT.normal`); ``weights`` (e.g. density
    compensation) has the trajectory's shape ``traj_shape`` and is the same for every coil.
    """

    def __init__(self, nufft: NUFFT, coil_maps: torch.Tensor):
        if not isinstance(nufft, NUFFT):
            raise TypeError(f"nufft must be an mrct.physics.NUFFT, got {type(nufft).__name__}")
        if not isinstance(coil_maps, torch.Tensor):
            raise TypeError(f"coil_maps must be a torch.Tensor, got {type(coil_maps).__name__}")
        if not coil_maps.is_complex():
            if not coil_maps.is_floating_point():
                raise TypeError(f"coil_maps must be complex, got {coil_maps.dtype}")
            coil_maps = coil_maps.to(_COMPLEX_OF[coil_maps.dtype])
        if coil_maps.ndim != 3 or tuple(coil_maps.shape[-2:]) != tuple(nufft.image_shape):
            raise ValueError(
                f"coil_maps must have shape (C, {nufft.image_shape[0]}, {nufft.image_shape[1]}) "
                f"(the NUFFT's image_shape), got {tuple(coil_maps.shape)}"
            )
        if not bool(torch.isfinite(torch.view_as_real(coil_maps)).all()):
            raise ValueError("coil_maps contains NaN or Inf")
        n_coils = coil_maps.shape[0]
        super().__init__(nufft.image_shape, (n_coils,) + tuple(nufft.out_shape))
        self.nufft = nufft
        self.n_coils = n_coils
        self.register_buffer("coil_maps", coil_maps)

    def extra_repr(self) -> str:
        return f"n_coils={self.n_coils}, image_shape={self.in_shape}, traj={self.nufft.out_shape}"

    def _maps(self, t: torch.Tensor) -> torch.Tensor:
        return self.coil_maps.to(device=t.device, dtype=t.dtype)

    @staticmethod
    def _complex(t, name):
        if not isinstance(t, torch.Tensor):
            raise DTypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.is_complex():
            return t
        if t.dtype in _COMPLEX_OF:
            return t.to(_COMPLEX_OF[t.dtype])
        raise DTypeError(f"{name} must be complex64 or complex128, got {t.dtype}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``(..., H, W)`` -> samples ``(..., C, *traj_shape)``."""
        x = self._complex(x, "x")
        if x.ndim < 2 or tuple(x.shape[-2:]) != self.in_shape:
            raise ShapeError(f"x must have shape (..., {self.in_shape[0]}, {self.in_shape[1]}), "
                             f"got {tuple(x.shape)}")  # fmt: skip
        return self.nufft(x.unsqueeze(-3) * self._maps(x))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Samples ``(..., C, *traj_shape)`` -> image ``(..., H, W)``."""
        y = self._complex(y, "y")
        n = len(self.out_shape)
        if y.ndim < n or tuple(y.shape[-n:]) != self.out_shape:
            raise ShapeError(f"y must have shape (..., {', '.join(map(str, self.out_shape))}), "
                             f"got {tuple(y.shape)}")  # fmt: skip
        z = self.nufft.adjoint(y)  # (..., C, H, W)
        return torch.sum(self._maps(z).conj() * z, dim=-3)

    def normal(self, weights=None) -> LinearOperator:
        """``sum_c S_c^H F^H diag(weights) F S_c`` by Toeplitz embedding."""
        if weights is not None:
            w = torch.as_tensor(weights)
            if w.is_complex():
                raise TypeError("weights must be real")
            try:
                torch.broadcast_shapes(tuple(w.shape), tuple(self.nufft.out_shape))
            except RuntimeError:
                raise ValueError(
                    f"weights must broadcast to the trajectory shape {self.nufft.out_shape} "
                    f"(shared by all coils), got {tuple(w.shape)}"
                ) from None
        return _SenseToeplitz(self, self.nufft.normal(weights))


class _SenseToeplitz(LinearOperator):
    def __init__(self, op: SenseNUFFT, toeplitz: LinearOperator):
        super().__init__(op.in_shape, op.in_shape)
        self.op = op
        self.toeplitz = toeplitz

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.op._complex(x, "x")
        maps = self.op._maps(x)
        return torch.sum(maps.conj() * self.toeplitz(x.unsqueeze(-3) * maps), dim=-3)

    adjoint = forward
