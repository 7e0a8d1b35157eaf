"""The small operator protocol of :mod:`mrct.jax`: ``op(x)``, ``op.adjoint(y)``, ``op.T``."""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["Operator", "AdjointOperator", "real_dtype_of", "complex_dtype_of", "real_input"]

_FLOATS = (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64))


def real_dtype_of(dtype):
    """float32 for float32/complex64 (and lower), float64 for float64/complex128."""
    dtype = jnp.dtype(dtype)
    return (
        jnp.dtype(jnp.float64) if dtype in (jnp.float64, jnp.complex128) else jnp.dtype(jnp.float32)
    )


def complex_dtype_of(dtype):
    """complex64 for 32-bit (and integer) input, complex128 for 64-bit input."""
    return jnp.dtype(jnp.complex128 if real_dtype_of(dtype) == jnp.float64 else jnp.complex64)


def real_input(x, name: str, trailing, what: str | None = None):
    """``x`` as a float32/float64 array of shape ``(..., *trailing)``, else TypeError /
    ValueError naming ``name`` (and ``what`` it should be)."""
    x = jnp.asarray(x)
    what = "" if what is None else f" ({what})"
    if x.dtype not in _FLOATS:
        raise TypeError(f"{name} must be float32 or float64{what}, got {x.dtype}")
    n = len(trailing)
    if x.ndim < n or tuple(x.shape[x.ndim - n :]) != tuple(trailing):
        raise ValueError(
            f"{name} must have shape (..., {', '.join(map(str, trailing))}){what}, "
            f"got {tuple(x.shape)}"
        )
    return x


class Operator:
    """A linear map on JAX arrays with leading batch dimensions.

    Subclasses implement :meth:`__call__` (``A x``) and :meth:`adjoint` (``A^H y``). Both are
    JAX-traceable functions of their array argument (the operator's configuration is static),
    so they compose with ``jax.jit``, ``jax.grad``, ``jax.vjp``, ``jax.jvp`` and ``jax.vmap``.

    Attributes
    ----------
    in_shape, out_shape : trailing shapes of the domain and range.
    """

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    def __call__(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def adjoint(self, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def normal(self, x):
        """``A^H A x``; operators with a faster equivalent override it."""
        return self.adjoint(self(x))

    @property
    def T(self) -> Operator:  # noqa: N802 - the usual mathematical name
        """The adjoint as an operator (``op.T(y) == op.adjoint(y)``; ``op.T.T`` is ``op``)."""
        return AdjointOperator(self)

    H = T

    def __repr__(self) -> str:
        return f"{type(self).__name__}(in_shape={self.in_shape}, out_shape={self.out_shape})"


class AdjointOperator(Operator):
    """``A^H`` of an operator ``A``."""

    def __init__(self, op: Operator):
        self.op = op
        self.in_shape, self.out_shape = op.out_shape, op.in_shape

    def __call__(self, y):
        return self.op.adjoint(y)

    def adjoint(self, x):
        return self.op(x)

    @property
    def T(self) -> Operator:  # noqa: N802
        return self.op

    H = T
