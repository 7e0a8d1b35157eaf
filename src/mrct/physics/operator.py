"""Linear operator algebra for torch.

``LinearOperator`` is a :class:`torch.nn.Module` with ``forward(x)`` (apply A) and
``adjoint(y)`` (apply A^H, the conjugate transpose). Operators compose (``A @ B``), add
(``A + B``), scale (``2 * A``) and expose ``A.H`` (the adjoint as an operator),
``A.normal()`` (A^H A, which subclasses override with a faster equivalent) and
``A.opnorm()`` (the spectral norm by power iteration).

The design follows the operator algebra of sigpy's ``Linop`` and deepinv's ``LinearPhysics``:
operators hold no data tensors of their own beyond buffers (geometry, masks, sensitivities),
so they move with ``.to(device)`` like any module.
"""

from __future__ import annotations

import numbers

import torch

__all__ = [
    "LinearOperator",
    "Identity",
    "Diagonal",
    "MatrixOperator",
    "ComposedOperator",
    "SumOperator",
    "ScaledOperator",
    "AdjointOperator",
    "NormalOperator",
]


class LinearOperator(torch.nn.Module):
    """Base class of linear operators ``A: X -> Y`` acting on torch tensors.

    Subclasses implement :meth:`forward` and :meth:`adjoint`. Both must accept leading batch
    dimensions and be differentiable (with torch autograd the gradient of ``A`` is ``A^H`` and
    vice versa).

    Parameters
    ----------
    in_shape, out_shape : tuple of int, optional
        Trailing (non-batch) shapes of the domain and range, when fixed. Used by
        :meth:`opnorm` and :func:`mrct.physics.check_adjoint` to create test inputs.
    """

    def __init__(self, in_shape: tuple[int, ...] | None = None, out_shape=None):
        super().__init__()
        self.in_shape = tuple(in_shape) if in_shape is not None else None
        self.out_shape = tuple(out_shape) if out_shape is not None else None

    # -- to implement -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement adjoint")

    # -- algebra ------------------------------------------------------------------------------
    @property
    def H(self) -> LinearOperator:  # noqa: N802 - the usual mathematical name
        """The adjoint ``A^H`` as an operator (``A.H.H`` is ``A``)."""
        return AdjointOperator(self)

    def normal(self) -> LinearOperator:
        """The normal operator ``A^H A``; subclasses may return a faster equivalent."""
        return NormalOperator(self)

    def __matmul__(self, other):
        if isinstance(other, LinearOperator):
            return ComposedOperator(self, other)
        if isinstance(other, torch.Tensor):
            return self(other)
        return NotImplemented

    def __add__(self, other):
        if isinstance(other, LinearOperator):
            return SumOperator(self, other)
        return NotImplemented

    def __sub__(self, other):
        if isinstance(other, LinearOperator):
            return SumOperator(self, ScaledOperator(other, -1.0))
        return NotImplemented

    def __neg__(self):
        return ScaledOperator(self, -1.0)

    def __mul__(self, scalar):
        if isinstance(scalar, numbers.Number):
            return ScaledOperator(self, scalar)
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, scalar):
        if isinstance(scalar, numbers.Number):
            return ScaledOperator(self, 1.0 / scalar)
        return NotImplemented

    # -- numerics -----------------------------------------------------------------------------
    @torch.no_grad()
    def opnorm(
        self,
        x_shape: tuple[int, ...] | None = None,
        *,
        n_iter: int = 100,
        tol: float = 1e-6,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        seed: int = 0,
    ) -> float:
        """Spectral norm ``||A||_2`` by power iteration on ``A^H A``.

        Parameters
        ----------
        x_shape : tuple of int, optional
            Shape of a domain element; defaults to ``self.in_shape``.
        n_iter, tol : stop after ``n_iter`` iterations or when the estimate changes by less
            than ``tol`` (relative).
        dtype, device : of the random start vector.

        Returns
        -------
        float
            Estimate of the largest singular value (from below: power iteration converges
            monotonically to it).
        """
        shape = _shape_or(x_shape, self.in_shape, "x_shape")
        device = device if device is not None else _module_device(self)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        x = torch.randn(shape, generator=gen, dtype=dtype).to(device)
        x = x / torch.linalg.vector_norm(x)
        normal = self.normal()
        sigma2 = 0.0
        for _ in range(n_iter):
            z = normal(x)
            new = float(torch.linalg.vector_norm(z))
            if new == 0.0:
                return 0.0
            x = z / new
            if abs(new - sigma2) <= tol * new:
                sigma2 = new
                break
            sigma2 = new
        return sigma2**0.5

    def extra_repr(self) -> str:
        if self.in_shape is None and self.out_shape is None:
            return ""
        return f"in_shape={self.in_shape}, out_shape={self.out_shape}"


def _shape_or(shape, default, name):
    if shape is not None:
        return tuple(shape)
    if default is None:
        raise ValueError(f"{name} is required: this operator has no fixed in_shape")
    return tuple(default)


def _module_device(module: torch.nn.Module) -> torch.device:
    for t in list(module.parameters()) + list(module.buffers()):
        return t.device
    return torch.device("cpu")


class AdjointOperator(LinearOperator):
    """``A^H`` of an operator ``A``."""

    def __init__(self, op: LinearOperator):
        super().__init__(op.out_shape, op.in_shape)
        self.op = op

    def forward(self, y):
        return self.op.adjoint(y)

    def adjoint(self, x):
        return self.op(x)

    @property
    def H(self):  # noqa: N802
        return self.op


class NormalOperator(LinearOperator):
    """``A^H A`` applied as two calls."""

    def __init__(self, op: LinearOperator):
        super().__init__(op.in_shape, op.in_shape)
        self.op = op

    def forward(self, x):
        return self.op.adjoint(self.op(x))

    adjoint = forward  # self-adjoint


class ComposedOperator(LinearOperator):
    """``A @ B``: apply ``B`` then ``A``."""

    def __init__(self, a: LinearOperator, b: LinearOperator):
        if a.in_shape is not None and b.out_shape is not None and a.in_shape != b.out_shape:
            raise ValueError(
                f"cannot compose: the left operator expects inputs of shape {a.in_shape} but the "
                f"right one produces {b.out_shape}"
            )
        super().__init__(b.in_shape, a.out_shape)
        self.a, self.b = a, b

    def forward(self, x):
        return self.a(self.b(x))

    def adjoint(self, y):
        return self.b.adjoint(self.a.adjoint(y))


class SumOperator(LinearOperator):
    """``A + B`` (same domain and range)."""

    def __init__(self, a: LinearOperator, b: LinearOperator):
        for s, t, what in ((a.in_shape, b.in_shape, "in"), (a.out_shape, b.out_shape, "out")):
            if s is not None and t is not None and s != t:
                raise ValueError(f"cannot add operators with {what}_shape {s} and {t}")
        super().__init__(a.in_shape or b.in_shape, a.out_shape or b.out_shape)
        self.a, self.b = a, b

    def forward(self, x):
        return self.a(x) + self.b(x)

    def adjoint(self, y):
        return self.a.adjoint(y) + self.b.adjoint(y)


class ScaledOperator(LinearOperator):
    """``c * A`` for a (real or complex) scalar ``c``."""

    def __init__(self, op: LinearOperator, scalar: numbers.Number):
        super().__init__(op.in_shape, op.out_shape)
        self.op, self.scalar = op, scalar

    def forward(self, x):
        return self.scalar * self.op(x)

    def adjoint(self, y):
        c = self.scalar.conjugate() if isinstance(self.scalar, complex) else self.scalar
        return c * self.op.adjoint(y)

    def normal(self):
        return ScaledOperator(self.op.normal(), abs(self.scalar) ** 2)


class Identity(LinearOperator):
    """The identity on tensors of any shape."""

    def forward(self, x):
        return x

    def adjoint(self, y):
        return y


class Diagonal(LinearOperator):
    """Pointwise multiplication by ``weights`` (broadcast over leading dimensions).

    Parameters
    ----------
    weights : Tensor
        Real or complex weights, e.g. a sampling mask or coil sensitivities of one coil.
    """

    def __init__(self, weights: torch.Tensor):
        super().__init__(tuple(weights.shape), tuple(weights.shape))
        self.register_buffer("weights", weights)

    def forward(self, x):
        return x * self.weights

    def adjoint(self, y):
        return y * self.weights.conj()


class MatrixOperator(LinearOperator):
    """Dense matrix ``M`` (m x n) applied along the last dimension: ``(..., n) -> (..., m)``."""

    def __init__(self, matrix: torch.Tensor):
        if matrix.ndim != 2:
            raise ValueError(f"matrix must be 2D (m, n), got shape {tuple(matrix.shape)}")
        super().__init__((matrix.shape[1],), (matrix.shape[0],))
        self.register_buffer("matrix", matrix)

    def forward(self, x):
        return x @ self.matrix.transpose(-1, -2)

    def adjoint(self, y):
        return y @ self.matrix.conj()
