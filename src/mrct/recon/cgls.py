"""CGLS: conjugate gradients on the normal equations, without forming them.

Minimises the (optionally Tikhonov-damped) least-squares objective

    f(x) = 1/2 ||A x - y||_2^2 + lam/2 ||x||_2^2,

i.e. solves ``(A^H A + lam I) x = A^H y`` with the recurrences of Hestenes & Stiefel (J. Res.
NBS 49, 1952) in the form of Paige & Saunders' CGLS (ACM TOMS 8, 1982; Bjorck, *Numerical
Methods for Least Squares Problems*, 1996, Alg. 7.4.1): one ``A`` and one ``A^H`` per iteration,
the residual ``r = y - A x`` updated recursively. ``||y - A x||`` and ``f`` decrease
monotonically; on noisy data the iterates semi-converge, so stop early (``n_iter``,
``discrepancy``) or damp with ``lam``.
"""

from __future__ import annotations

import torch

from .iterative import Problem, check_discrepancy, check_nonneg, iterative_solver, safe_div

__all__ = ["cgls"]


@iterative_solver("CGLS", n_iter=100, tol=1e-6)
def cgls(
    P: Problem, tol: float, *, lam: float = 0.0, discrepancy: float | torch.Tensor | None = None
):
    """CGLS for ``min_x 1/2 ||A x - y||^2 + lam/2 ||x||^2``.

    Parameters
    ----------
    A : LinearOperator
        Any operator with an adjoint (CT :class:`~mrct.physics.Radon`, MRI operators, dense
        :class:`~mrct.physics.MatrixOperator`).
    y : Tensor, shape (*batch, *A.out_shape)
        Data, real or complex.
    x0 : Tensor, shape (*batch, *A.in_shape), optional
        Starting point (default zeros).
    n_iter : int >= 1
        Maximum number of iterations.
    tol : float >= 0
        Stop an item when the normal equations' relative residual
        ``||A^H (y - A x) - lam x|| / ||A^H y||`` is at most ``tol``.
    lam : float >= 0
        Tikhonov damping.
    discrepancy : float or Tensor (*batch), optional
        Discrepancy principle: stop an item once ``||y - A x||_2 <= discrepancy``.
    callback, progress, return_history : as for :func:`mrct.recon.sirt`

    Returns
    -------
    x : Tensor, shape (*batch, *A.in_shape)
    history : History, only with ``return_history=True``
        ``objective`` is ``f(x)``; ``residual`` the relative normal-equation residual.
    """
    lam = check_nonneg("lam", lam)
    A, x, y = P.A, P.x0, P.y
    disc = check_discrepancy(discrepancy, P.batch, y.device)
    tiny = torch.finfo(x.real.dtype).tiny
    b_norm = P.norm2_x(P.aty).sqrt().clamp_min(tiny)

    zero_start = not bool(x.any())
    r = y.clone() if zero_start else y - A(x)
    s = P.aty.clone() if zero_start else A.adjoint(r)
    if lam > 0:
        s = s - lam * x
    p = s.clone()
    gamma = P.norm2_x(s)

    def state():  # x, objective f(x), relative normal-equation residual, stopping test
        f = 0.5 * P.norm2_y(r)
        f = f + 0.5 * lam * P.norm2_x(x) if lam > 0 else f
        rel = gamma.sqrt() / b_norm
        done = rel <= tol
        reason = "tol" if bool(done.any()) else None
        if disc is not None:
            hit = P.norm2_y(r).sqrt().to(torch.float64) <= disc
            done = done | hit
            reason = "discrepancy" if bool(hit.any()) else reason
        return x, f, rel, done, reason

    def step(k, active):
        nonlocal x, r, s, p, gamma
        q = A(p)
        delta = P.norm2_y(q)
        if lam > 0:
            delta = delta + lam * P.norm2_x(p)
        alpha = safe_div(gamma, delta) * active
        x = x + P.bx(alpha).to(x.dtype) * p
        r = r - P.by(alpha).to(r.dtype) * q
        s = A.adjoint(r)
        if lam > 0:
            s = s - lam * x
        gamma_new = P.norm2_x(s)
        beta = safe_div(gamma_new, gamma)
        p = s + P.bx(beta).to(p.dtype) * p
        gamma = gamma_new
        return state()

    return state(), step, {"lam": lam}
