"""SIRT: the simultaneous iterative reconstruction technique for CT.

With ``R = diag(1 / (A 1))`` (inverse row sums: one over each ray's length through the image)
and ``C = diag(1 / (A^T 1))`` (inverse column sums), SIRT iterates

    x_{k+1} = P( x_k + omega C A^T R (y - A x_k) ),

a gradient step on the weighted least-squares objective ``f(x) = 1/2 ||y - A x||_R^2`` in the
metric ``C^{-1}``, followed by the projection ``P`` onto a box (e.g. ``x >= 0``). Because
``||C^{1/2} A^T R A C^{1/2}|| <= 1`` for an operator with non-negative entries, every
relaxation ``0 < omega < 2`` decreases ``f`` monotonically, with or without the box (a box is
separable, so its projection is the same in the diagonal metric). References: Gilbert, J.
Theor. Biol. 36, 1972; Gregor & Benson, IEEE TMI 27(7), 2008; the ``SIRT`` of ASTRA and the
``sirt`` of TIGRE.
"""

from __future__ import annotations

import torch

from .iterative import Problem, check_discrepancy, iterative_solver

__all__ = ["sirt"]


def _inverse_sums(s: torch.Tensor, rel: float = 1e-6) -> torch.Tensor:
    """``1 / s`` where ``s > rel * max(s)`` and 0 elsewhere (rays missing the image, unseen
    pixels)."""
    top = float(s.max()) if s.numel() else 0.0
    if not top > 0:
        return torch.zeros_like(s)
    keep = s > rel * top
    return torch.where(keep, 1.0 / torch.where(keep, s, torch.ones_like(s)), torch.zeros_like(s))


@iterative_solver("SIRT", n_iter=100, tol=0.0)
def sirt(
    P: Problem,
    tol: float,
    *,
    relax: float = 1.0,
    nonneg: bool = False,
    bounds: tuple[float | None, float | None] | None = None,
    discrepancy: float | torch.Tensor | None = None,
):
    """SIRT reconstruction ``x <- P(x + relax C A^T R (y - A x))``.

    Parameters
    ----------
    A : LinearOperator
        Forward model with non-negative entries, e.g. :class:`mrct.physics.Radon`.
    y : Tensor, shape (*batch, *A.out_shape)
        Projections (real; complex data is handled part by part by operators that do so).
    x0 : Tensor, shape (*batch, *A.in_shape), optional
        Starting image (default zeros).
    n_iter : int >= 1
        Maximum number of iterations.
    tol : float >= 0
        Stop an item when the objective fell by less than ``tol`` (relative) in one iteration;
        0 (default) disables the test.
    relax : float in (0, 2)
        Relaxation ``omega``.
    nonneg : bool
        Project onto ``x >= 0`` after every step (attenuation is non-negative).
    bounds : (lo, hi), optional
        Box constraint ``lo <= x <= hi`` (either may be ``None``); combined with ``nonneg``.
    discrepancy : float or Tensor (*batch), optional
        Discrepancy principle (Morozov): stop an item once ``||y - A x||_2 <= discrepancy``,
        e.g. ``1.01 * sigma * sqrt(y[0].numel())`` for white noise of standard deviation
        ``sigma``. SIRT is semi-convergent on noisy data; this is its usual early stopping.
    callback : callable ``callback(k, x, history) -> bool | None``, optional
        Called after iteration ``k`` (1-based) with the iterate and the :class:`History` so
        far; returning ``True`` stops.
    progress : bool
        Show a tqdm progress bar (off by default; a library call prints nothing).
    return_history : bool
        Also return the :class:`~mrct.recon.History`.

    Returns
    -------
    x : Tensor, shape (*batch, *A.in_shape)
    history : History, only with ``return_history=True``
        ``objective`` is ``1/2 ||y - A x||_R^2``, ``residual`` is ``||y - A x||_2 / ||y||_2``.

    Notes
    -----
    Each iteration costs one forward and one adjoint; the set-up costs one of each (the row
    and column sums, computed by applying ``A`` and ``A^T`` to ones).
    """
    relax = float(relax)
    if not 0.0 < relax < 2.0:
        raise ValueError(f"relax must lie in (0, 2), got {relax}")
    A, x, y = P.A, P.x0, P.y
    if bounds is not None and (not isinstance(bounds, (tuple, list)) or len(bounds) != 2):
        raise ValueError(f"bounds must be (lo, hi), got {bounds!r}")
    lo, hi = (None, None) if bounds is None else (bounds[0], bounds[1])
    lo = None if lo is None else float(lo)
    hi = None if hi is None else float(hi)
    if nonneg:
        lo = 0.0 if lo is None else max(lo, 0.0)
    if (lo is not None or hi is not None) and x.is_complex():
        raise ValueError("sirt: nonneg / bounds need a real image, but the unknown is complex")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"bounds must have lo <= hi, got {bounds!r}")

    def project(v):
        if lo is not None or hi is not None:
            v = v.clamp(min=lo, max=hi)
        return v

    row = A(torch.ones_like(x))
    col = A.adjoint(torch.ones_like(y))
    for sums, what in ((row, "A 1 (row sums)"), (col, "A^T 1 (column sums)")):
        top = float(sums.abs().max()) if sums.numel() else 0.0
        bad = (-sums.real).clamp(min=0)
        if sums.is_complex():
            bad = bad + sums.imag.abs()
        if top > 0 and float(bad.max()) > 1e-6 * top:
            raise ValueError(
                f"sirt needs an operator with non-negative entries (a CT projector), but {what} "
                "has negative or complex values; use cgls, cg_sense or tv_pdhg for this operator"
            )
    R = _inverse_sums(row.real if row.is_complex() else row)
    C = _inverse_sums(col.real if col.is_complex() else col)
    disc = check_discrepancy(discrepancy, P.batch, y.device)
    y_norm = P.norm2_y(y).sqrt().clamp_min(torch.finfo(y.real.dtype).tiny)

    x = project(x)
    r = y - A(x)
    obj = 0.5 * P.dot_y(r, R * r)

    def step(k, active):
        nonlocal x, r, obj
        x_new = project(x + relax * C * A.adjoint(R * r))
        x = torch.where(P.bx(active), x_new, x)
        r = y - A(x)
        obj_new = 0.5 * P.dot_y(r, R * r)
        r_norm = P.norm2_y(r).sqrt()
        done = torch.zeros_like(active)
        reason = None
        if tol > 0:
            hit = (obj - obj_new) <= tol * obj.abs()
            done |= hit
            reason = "tol" if bool(hit.any()) else reason
        if disc is not None:
            hit = r_norm.to(torch.float64) <= disc
            done |= hit
            reason = "discrepancy" if bool(hit.any()) else reason
        obj = obj_new
        return x, obj_new, r_norm / y_norm, done, reason

    start = (x, obj, P.norm2_y(r).sqrt() / y_norm, None, None)
    return start, step, {"relax": relax, "lower": lo, "upper": hi}
