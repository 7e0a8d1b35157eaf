"""CG-SENSE: conjugate gradients on the (weighted, regularised) normal equations of MRI.

Solves

    (A^H W A + lam I) x = A^H W y,

the minimiser of ``f(x) = 1/2 ||A x - y||_W^2 + lam/2 ||x||^2``, by the conjugate gradient
method (Hestenes & Stiefel 1952) as in Pruessmann et al., MRM 46:638, 2001 ("Advances in
sensitivity encoding with arbitrary k-space trajectories"). ``A`` is any
:class:`~mrct.physics.LinearOperator` (Cartesian SENSE :class:`~mrct.physics.CartesianMRI`,
non-Cartesian :class:`~mrct.physics.SenseNUFFT`), ``W = diag(weights)`` optional real weights
(density compensation), and ``A^H W A`` may be supplied as a fast equivalent (the Toeplitz
``F.normal(weights)`` of a NUFFT, the one-pass ``CartesianMRI.normal()``). CG decreases ``f``
monotonically (it minimises ``f`` over growing Krylov subspaces).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from ..physics import LinearOperator
from .iterative import Problem, check_nonneg, iterative_solver, safe_div

__all__ = ["cg_sense"]


def _accepts_weights(A) -> bool:
    try:
        return "weights" in inspect.signature(A.normal).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return False


@iterative_solver("CG-SENSE", n_iter=50, tol=1e-6)
def cg_sense(
    P: Problem,
    tol: float,
    *,
    lam: float = 0.0,
    weights: torch.Tensor | None = None,
    normal: LinearOperator | Callable | None = None,
):
    """CG-SENSE for ``min_x 1/2 ||A x - y||_W^2 + lam/2 ||x||^2``.

    Parameters
    ----------
    A : LinearOperator
        Encoding operator, e.g. ``CartesianMRI(mask, coil_maps)`` or
        ``SenseNUFFT(NUFFT(traj, shape), coil_maps)``.
    y : Tensor, shape (*batch, *A.out_shape)
        k-space data (complex).
    x0 : Tensor, shape (*batch, *A.in_shape), optional
        Starting image (default zeros).
    n_iter : int >= 1
        Maximum number of CG iterations.
    tol : float >= 0
        Stop an item when ``||A^H W (y - A x) - lam x|| / ||A^H W y|| <= tol``.
    lam : float >= 0
        Tikhonov regularisation weight.
    weights : Tensor, real, broadcastable to y, optional
        Data weights ``W`` (e.g. density compensation); ``None`` means ``W = I``.
    normal : LinearOperator or callable, optional
        ``A^H W A`` itself (without ``lam``). Default: ``A.normal(weights)`` when the
        operator's ``normal`` takes weights (NUFFT-based: Toeplitz), ``A.normal()`` when
        ``weights`` is ``None``, else ``A^H (W (A x))`` applied as two calls.
    callback, progress, return_history : as for :func:`mrct.recon.sirt`

    Returns
    -------
    x : Tensor, shape (*batch, *A.in_shape)
    history : History, only with ``return_history=True``
        ``objective`` is ``f(x)`` evaluated through the normal operator as
        ``1/2 ||y||_W^2 - 1/2 Re <x, A^H W y + r>`` with ``r`` the normal-equation residual
        (exact for ``normal = A^H W A``; for an approximate normal operator, such as a Toeplitz
        kernel, it is the value of the quadratic model that CG minimises); ``residual`` is
        ``||r|| / ||A^H W y||``.
    """
    lam = check_nonneg("lam", lam)
    A, x, y = P.A, P.x0, P.y
    if weights is not None:
        w = torch.as_tensor(weights, device=y.device)
        if w.is_complex() or not w.is_floating_point():
            raise TypeError(f"weights must be a real floating tensor, got {w.dtype}")
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise ValueError("weights must be finite and non-negative")
        try:
            torch.broadcast_shapes(tuple(w.shape), tuple(y.shape))
        except RuntimeError:
            raise ValueError(
                f"weights of shape {tuple(w.shape)} do not broadcast to y of shape {tuple(y.shape)}"
            ) from None
        wy = w.to(y.real.dtype) * y
        b = A.adjoint(wy)
        yw2 = P.dot_y(y, wy)
    else:
        w = None
        b = P.aty
        yw2 = P.norm2_y(y)
    if normal is None:
        if w is None:
            normal = A.normal()
        elif _accepts_weights(A):
            normal = A.normal(w)
        else:

            def normal(v, A=A, w=w):
                return A.adjoint(w.to(y.real.dtype) * A(v))

    elif not callable(normal):
        raise TypeError(f"normal must be a LinearOperator or a callable, got {type(normal)}")
    if b.dtype != x.dtype:
        x = x.to(b.dtype)

    def M(v):
        out = normal(v)
        if out.shape != v.shape:
            raise ValueError(
                f"the normal operator maps shape {tuple(v.shape)} to {tuple(out.shape)}; "
                "it must preserve the image shape"
            )
        return out + lam * v if lam > 0 else out

    tiny = torch.finfo(b.real.dtype).tiny
    b_norm = P.norm2_x(b).sqrt().clamp_min(tiny)
    r = b.clone() if not bool(x.any()) else b - M(x)
    p = r.clone()
    rs = P.norm2_x(r)

    def state():  # x, objective, relative residual, stopping test
        rel = rs.sqrt() / b_norm
        return x, 0.5 * yw2 - 0.5 * P.dot_x(x, b + r), rel, ~(rel > tol), "tol"

    def step(k, active):
        nonlocal x, r, p, rs
        Mp = M(p)
        alpha = safe_div(rs, P.dot_x(p, Mp)) * active
        x = x + P.bx(alpha).to(x.dtype) * p
        r = r - P.bx(alpha).to(r.dtype) * Mp
        rs_new = P.norm2_x(r)
        beta = safe_div(rs_new, rs)
        p = r + P.bx(beta).to(p.dtype) * p
        rs = rs_new
        return state()

    return state(), step, {"lam": lam, "weighted": w is not None}
