"""Dot-product test of an operator's adjoint: ``<A x, y> == <x, A^H y>``."""

from __future__ import annotations

import torch

from .operator import LinearOperator

__all__ = ["check_adjoint", "adjoint_error"]

#: default tolerance on the relative dot-product error, by precision
TOLERANCES = {
    torch.float64: 1e-10,
    torch.complex128: 1e-10,
    torch.float32: 1e-4,
    torch.complex64: 1e-4,
}


def _randn(shape, dtype, gen, device):
    if dtype.is_complex:
        real = {torch.complex64: torch.float32, torch.complex128: torch.float64}[dtype]
        z = torch.complex(
            torch.randn(shape, generator=gen, dtype=real),
            torch.randn(shape, generator=gen, dtype=real),
        )
        return z.to(device)
    return torch.randn(shape, generator=gen, dtype=dtype).to(device)


def adjoint_error(
    op: LinearOperator,
    x_shape: tuple[int, ...] | None = None,
    *,
    dtype: torch.dtype = torch.float64,
    y_dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> float:
    """Relative dot-product error ``|<Ax, y> - <x, A^H y>| / max(|<Ax, y>|, |<x, A^H y>|)``.

    ``x`` and ``y`` are standard normal (complex normal for complex dtypes); the inner products
    are accumulated in float64/complex128 so that only the operator's own error is measured.

    Parameters
    ----------
    op : LinearOperator
    x_shape : shape of ``x`` including any batch dimensions (default ``op.in_shape``).
    dtype : dtype of ``x``; ``y_dtype`` that of ``y`` (default: the dtype of ``A x``).
    """
    if x_shape is None:
        if op.in_shape is None:
            raise ValueError("x_shape is required: the operator has no fixed in_shape")
        x_shape = op.in_shape
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = _randn(tuple(x_shape), dtype, gen, device)
    with torch.no_grad():
        ax = op(x)
        y = _randn(tuple(ax.shape), y_dtype or ax.dtype, gen, device)
        ahy = op.adjoint(y)
    if ahy.shape != x.shape:
        raise AssertionError(
            f"adjoint returned shape {tuple(ahy.shape)}, expected the input shape {tuple(x.shape)}"
        )
    wide = torch.complex128 if (ax.is_complex() or x.is_complex()) else torch.float64
    lhs = torch.vdot(y.to(wide).flatten(), ax.to(wide).flatten())  # <Ax, y> = y^H A x
    rhs = torch.vdot(ahy.to(wide).flatten(), x.to(wide).flatten())  # <x, A^H y> = (A^H y)^H x
    scale = max(abs(complex(lhs)), abs(complex(rhs)), 1e-300)
    return abs(complex(lhs - rhs)) / scale


def check_adjoint(
    op: LinearOperator,
    x_shape: tuple[int, ...] | None = None,
    *,
    dtype: torch.dtype = torch.float64,
    y_dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    rtol: float | None = None,
    seed: int = 0,
) -> float:
    """Assert that ``op.adjoint`` is the adjoint of ``op`` by the dot-product test.

    Parameters
    ----------
    op : LinearOperator
        The operator to check.
    x_shape : tuple of int, optional
        Shape of the test input (batch dimensions included); default ``op.in_shape``.
    dtype : torch.dtype
        dtype of the test input (float32, float64, complex64 or complex128).
    y_dtype : torch.dtype, optional
        dtype of the test output-space vector; default the dtype ``op`` returns.
    device : device of the test vectors.
    rtol : float, optional
        Tolerance on the relative error; default 1e-10 for 64-bit and 1e-4 for 32-bit types.
    seed : int
        Seed of the random test vectors.

    Returns
    -------
    float
        The relative dot-product error (see :func:`adjoint_error`).

    Raises
    ------
    AssertionError
        If the error exceeds ``rtol``.
    """
    if rtol is None:
        rtol = TOLERANCES.get(dtype)
        if rtol is None:
            raise ValueError(f"no default tolerance for dtype {dtype}; pass rtol")
    err = adjoint_error(op, x_shape, dtype=dtype, y_dtype=y_dtype, device=device, seed=seed)
    if not err <= rtol:
        raise AssertionError(
            f"{type(op).__name__}: adjoint test failed, relative dot-product error {err:.3e} > "
            f"{rtol:.1e} (dtype {dtype})"
        )
    return err
