"""TV-regularised reconstruction by the primal-dual hybrid gradient method (Chambolle-Pock).

Solves

    min_x  E(x) = 1/2 ||A x - y||_2^2 + lam TV(x)   [+ indicator(x >= 0)],
    TV(x) = sum_i |(D x)_i|_2                         (isotropic total variation),

with ``D`` the forward-difference :class:`~mrct.physics.Gradient` (2D or 3D, Neumann boundary),
by Algorithm 1 of A. Chambolle and T. Pock, "A first-order primal-dual algorithm for convex
problems with applications to imaging", J. Math. Imaging Vis. 40:120-145, 2011 (theta = 1),
applied to ``K = [a A; d D]``, ``F(u, v) = 1/(2 a^2) ||u - a y||^2 + (lam / d) ||v||_{2,1}`` and
``G = 0`` or the indicator of ``x >= 0``:

    p_{k+1} = (p_k + sigma a (A xbar_k - y)) / (1 + sigma a^2)     (prox of sigma F_1^*)
    q_{k+1} = proj_{|q_i| <= lam/d}(q_k + sigma d D xbar_k)          (prox of sigma F_2^*)
    x_{k+1} = prox_{tau G}(x_k - tau (a A^H p_{k+1} + d D^H q_{k+1}))
    xbar_{k+1} = 2 x_{k+1} - x_k.

The blocks are scaled to unit norm (``a = 1 / ||A||``, ``d = 1 / ||D||``; Sidky, Jorgensen &
Pan, Phys. Med. Biol. 57:3065, 2012) so that one pair of step sizes suits CT and MRI alike;
``tau sigma L^2 = 0.99 < 1`` with ``L = ||K||`` estimated by power iteration, as the
convergence theorem (Chambolle & Pock 2011, Thm. 1) requires; the ratio ``sigma / tau`` is
balanced adaptively (Goldstein et al. 2015) unless ``adaptive=False``. Works for real (CT)
and complex (MRI) images; for complex ``x``, ``|(D x)_i|`` is the modulus over the components
and the real and imaginary parts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from ..physics import LinearOperator
from ..physics.gradient import Gradient
from .iterative import _norm2, check_iter_args, check_nonneg, check_problem, run_solver

__all__ = ["tv_pdhg", "total_variation"]

# residual balancing of the step sizes (Goldstein et al. 2015): initial change, decay, tolerance
_ADAPT_ALPHA, _ADAPT_ETA, _ADAPT_DELTA = 0.5, 0.95, 1.5


def _grad_norm(g: torch.Tensor, comp_dim: int) -> torch.Tensor:
    """Pointwise ``|g_i|_2`` over the gradient components (and real/imaginary parts)."""
    if g.is_complex():
        g = torch.view_as_real(g)
        return torch.sqrt(torch.sum(g * g, dim=(comp_dim - 1, -1)))
    return torch.sqrt(torch.sum(g * g, dim=comp_dim))


def total_variation(x: torch.Tensor, ndim: int = 2, spacing=1.0) -> torch.Tensor:
    """Isotropic total variation ``sum_i |(D x)_i|_2`` over the last ``ndim`` axes.

    Parameters
    ----------
    x : Tensor (..., H, W) or (..., D, H, W), real or complex
    ndim : 2 or 3
    spacing : grid spacing in mm (see :class:`~mrct.physics.Gradient`)

    Returns
    -------
    Tensor of shape ``x.shape[:-ndim]`` (real)
    """
    D = Gradient(ndim=ndim, spacing=spacing)
    mag = _grad_norm(D(x), -ndim - 1)
    return mag.sum(dim=tuple(range(-ndim, 0)))


@torch.no_grad()
def tv_pdhg(
    A: LinearOperator,
    y: torch.Tensor,
    lam: float,
    x0: torch.Tensor | None = None,
    n_iter: int = 300,
    tol: float = 0.0,
    *,
    nonneg: bool = False,
    ndim: int | None = None,
    spacing=1.0,
    ratio: float = 1.0,
    adaptive: bool = True,
    opnorm: float | None = None,
    norm_iter: int = 50,
    callback: Callable | None = None,
    progress: bool = False,
    return_history: bool = False,
):
    """TV-regularised least squares ``min_x 1/2 ||A x - y||^2 + lam TV(x)`` by Chambolle-Pock.

    Parameters
    ----------
    A : LinearOperator
        Forward model (``Radon``, ``CartesianMRI``, ``SenseNUFFT``, ``Identity`` for
        denoising, ...).
    y : Tensor, shape (*batch, *A.out_shape)
        Data, real or complex.
    lam : float >= 0
        TV weight, in units of ``||A x - y||^2 / TV(x)``: it scales with the data (e.g. with
        the number of views and the pixel size for CT). Choose it on a training image or by
        the discrepancy principle.
    x0 : Tensor, shape (*batch, *A.in_shape), optional
        Starting image (default zeros).
    n_iter : int >= 1
        Maximum number of iterations.
    tol : float >= 0
        Stop an item when the relative update ``||x_{k+1} - x_k|| / ||x_{k+1}||`` is at most
        ``tol`` (0, the default, runs ``n_iter`` iterations; PDHG's updates shrink slowly, so
        values around 1e-4 are typical).
    nonneg : bool
        Constrain ``x >= 0`` (real images only).
    ndim : 2 or 3, optional
        Spatial dimensions of TV, the image's trailing axes (default ``len(A.in_shape)``, or
        2 for an operator without ``in_shape`` such as ``Identity``: then the leading axes of
        ``y`` are batch axes; pass ``ndim=3`` to denoise volumes).
    spacing : float or sequence
        Grid spacing of the finite differences (mm); TV is then per mm.
    ratio : float > 0
        Initial ``sigma / tau`` (always ``tau sigma L^2 = 0.99``).
    adaptive : bool
        Balance the primal and dual residuals by adapting ``tau / sigma`` per batch item
        (Goldstein, Li, Yuan, Esser & Baraniuk, "Adaptive primal-dual splitting methods for
        statistical learning and image processing", NeurIPS 2015; arXiv:1305.0546): the
        product ``tau sigma`` is kept and the adaptation decays geometrically, so the
        convergence guarantee holds. On by default: it makes the speed nearly independent of
        ``ratio`` and of the scale of the data. ``adaptive=False`` is plain Chambolle-Pock.
    opnorm : float, optional
        ``||A||`` if known (skips one power iteration).
    norm_iter : int
        Power iterations for the norm estimates.
    callback, progress, return_history : as for :func:`mrct.recon.sirt`

    Returns
    -------
    x : Tensor, shape (*batch, *A.in_shape)
    history : History, only with ``return_history=True``
        ``objective`` is the primal energy ``E(x_k)``, ``residual`` the relative update;
        ``info`` holds ``tau``, ``sigma``, ``opnorm_A`` and ``L``.

    Notes
    -----
    Per iteration: one ``A``, one ``A^H``, one gradient and one divergence. ``A x_k`` is not
    recomputed for the objective: ``K x_{k+1} = (K xbar_{k+1} + K x_k) / 2`` follows from
    ``xbar_{k+1} = 2 x_{k+1} - x_k``, so the history costs nothing. The energy is not monotone
    in PDHG; it decreases overall (the ergodic primal-dual gap is O(1/k)).
    """
    t_start = time.perf_counter()
    n_iter, tol = check_iter_args(n_iter, tol, callback)
    lam = check_nonneg("lam", lam)
    ratio = float(ratio)
    if not (math.isfinite(ratio) and ratio > 0):
        raise ValueError(f"ratio (sigma / tau) must be positive, got {ratio}")
    if ndim is not None and ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
    P = check_problem(A, y, x0, name="tv_pdhg", x_ndim=2 if ndim is None else ndim)
    x, y = P.x0, P.y
    if nonneg and x.is_complex():
        raise ValueError("tv_pdhg: nonneg needs a real image, but the unknown is complex")
    if ndim is None:
        ndim = P.n_x if P.n_x in (2, 3) else 2
    if ndim not in (2, 3) or ndim > P.n_x:
        raise ValueError(
            f"ndim must be 2 or 3 and at most the image's dimensions ({P.n_x}), got {ndim}"
        )
    D = Gradient(tuple(x.shape[x.ndim - ndim :]), spacing=spacing)
    if nonneg:
        x = x.clamp(min=0.0)
    pd = _PDHG(A, D, P, y, lam, nonneg, adaptive, ndim)
    pd.step_sizes(x, ratio, opnorm, norm_iter)
    pd.start(x)

    def step(k, active):
        pd.iterate(active)
        return pd.x, pd.energy(), pd.rel, (pd.rel <= tol) if tol > 0 else None, "tol"

    start = (pd.x, pd.energy(), None, None, None)
    return run_solver("TV-PDHG", start, step, n_iter=n_iter, callback=callback,
                      progress=progress, t_start=t_start, return_history=return_history,
                      info=pd.info)  # fmt: skip


class _PDHG:
    """The state of Chambolle-Pock on ``K = [a A; d D]`` (module docstring): the iterates
    ``x``, ``p``, ``q``, the images ``K x`` and ``K xbar`` (kept, so that the energy costs no
    operator application), and the per-item step sizes ``tau``, ``sigma``."""

    def __init__(self, A, D, P, y, lam: float, nonneg: bool, adaptive: bool, ndim: int):
        self.A, self.D, self.P, self.y = A, D, P, y
        self.lam, self.nonneg, self.adaptive = lam, nonneg, adaptive
        self.comp = -ndim - 1  # the axis of the gradient components
        self.n_q = P.n_x + 1  # trailing dims of the dual variable q: (ndim, *spatial)

    # -- set-up -------------------------------------------------------------------------
    def step_sizes(self, x, ratio: float, opnorm: float | None, norm_iter: int) -> None:
        """Block scales ``a = 1/||A||``, ``d = 1/||D||``, ``L = ||K||`` and per-item
        ``tau``, ``sigma`` with ``tau sigma L^2 = 0.99`` and ``sigma / tau = ratio``."""
        A, D, P = self.A, self.D, self.P
        x_shape = tuple(x.shape[len(P.batch) :])
        if opnorm is None:
            norm_a = A.opnorm(x_shape, n_iter=norm_iter, tol=1e-4, dtype=x.dtype,
                              device=x.device)  # fmt: skip
        else:
            norm_a = float(opnorm)
        if not (math.isfinite(norm_a) and norm_a > 0):
            raise ValueError(f"the operator norm must be positive and finite, got {norm_a}")
        self.norm_a, self.a, self.d = norm_a, 1.0 / norm_a, 1.0 / D.norm_bound()
        K = _StackedK(A, D, self.a, self.d)
        self.L = 1.01 * K.opnorm(x_shape, n_iter=norm_iter, tol=1e-4, dtype=x.dtype,
                                 device=x.device)  # fmt: skip
        self.tau = torch.full(P.batch, math.sqrt(0.99 / ratio) / self.L, dtype=torch.float64,
                              device=x.device)  # fmt: skip
        self.sigma = ratio * self.tau
        self.alpha = torch.full_like(self.tau, _ADAPT_ALPHA)
        self.radius = self.lam / self.d

    def start(self, x) -> None:
        self.x = x
        self.Ax, self.Dx = self.A(x), self.D(x)
        self.p, self.q = torch.zeros_like(self.Ax), torch.zeros_like(self.Dx)
        self.Axb, self.Dxb = self.Ax, self.Dx
        self.rel = None

    def info(self) -> dict:
        return {"tau": self.tau.cpu(), "sigma": self.sigma.cpu(), "opnorm_A": self.norm_a,
                "L": self.L, "lam": self.lam}  # fmt: skip

    # -- pieces -------------------------------------------------------------------------
    def bq(self, v):  # per-item scalars broadcast against q
        return v.reshape(self.P.batch + (1,) * self.n_q)

    def proj_ball(self, q):
        """Project every ``q_i`` onto the ball of radius ``lam / d`` (prox of ``F_2^*``)."""
        if self.radius == 0:
            return torch.zeros_like(q)
        mag = _grad_norm(q, self.comp).unsqueeze(self.comp)
        return q / torch.clamp(mag / self.radius, min=1.0)

    def energy(self):
        """``E(x) = 1/2 ||A x - y||^2 + lam TV(x)`` per item, from the kept ``A x``, ``D x``."""
        P = self.P
        e = 0.5 * P.norm2_y(self.Ax - self.y)
        if self.lam > 0:
            e = e + self.lam * _grad_norm(self.Dx, self.comp).sum(dim=tuple(range(-P.n_x, 0)))
        return e

    # -- one iteration --------------------------------------------------------------------
    def iterate(self, active) -> None:
        """Dual steps, primal step, extrapolation; frozen items keep their iterates."""
        A, D, P, a, d = self.A, self.D, self.P, self.a, self.d
        x, p, q = self.x, self.p, self.q
        rdt = x.real.dtype
        tx, sy, sq_ = P.bx(self.tau).to(rdt), P.by(self.sigma).to(rdt), self.bq(self.sigma).to(rdt)
        p_new = (p + (sy * a) * (self.Axb - self.y)) / (1.0 + sy * (a * a))
        q_new = self.proj_ball(q + (sq_ * d) * self.Dxb)
        x_new = x - tx * (a * A.adjoint(p_new) + d * D.adjoint(q_new))
        if self.nonneg:
            x_new = x_new.clamp(min=0.0)
        if not bool(active.all()):
            x_new = torch.where(P.bx(active), x_new, x)
            p_new = torch.where(P.by(active), p_new, p)
            q_new = torch.where(self.bq(active), q_new, q)
        xb = 2.0 * x_new - x
        Axb_new, Dxb_new = A(xb), D(xb)
        Ax_new, Dx_new = 0.5 * (Axb_new + self.Ax), 0.5 * (Dxb_new + self.Dx)  # = K x_new
        dx2 = P.norm2_x(x_new - x)
        self.rel = dx2.sqrt() / P.norm2_x(x_new).sqrt().clamp_min(torch.finfo(rdt).tiny)
        if self.adaptive:
            res_p = dx2.sqrt() / self.tau.to(dx2.dtype)
            res_d = (
                _norm2((p - p_new) / sy + a * (self.Axb - Ax_new), P.n_y)
                + _norm2((q - q_new) / sq_ + d * (self.Dxb - Dx_new), self.n_q)
            ).sqrt()
            self.balance(res_p.to(torch.float64), res_d.to(torch.float64), active)
        self.x, self.p, self.q = x_new, p_new, q_new
        self.Ax, self.Dx, self.Axb, self.Dxb = Ax_new, Dx_new, Axb_new, Dxb_new

    def balance(self, res_p, res_d, active) -> None:
        """Residual balancing (Goldstein, Li, Yuan, Esser & Baraniuk, arXiv:1305.0546, 2015):
        primal residual ``(x_k - x_{k+1}) / tau``, dual residual ``(y_k - y_{k+1}) / sigma +
        K (xbar_k - x_{k+1})`` with ``y = (p, q)``; ``tau sigma`` is kept, the change decays."""
        up = (res_p > _ADAPT_DELTA * res_d) & active
        down = (res_d > _ADAPT_DELTA * res_p) & active
        fac = 1.0 - self.alpha
        tau, sigma = self.tau, self.sigma
        self.tau = torch.where(up, tau / fac, torch.where(down, tau * fac, tau))
        self.sigma = torch.where(up, sigma * fac, torch.where(down, sigma / fac, sigma))
        self.alpha = torch.where(up | down, self.alpha * _ADAPT_ETA, self.alpha)


class _StackedK(LinearOperator):
    """``K = [a A; d D]`` as one operator (tuple-valued), for the power iteration of ``||K||``."""

    def __init__(self, A, D, a, d):
        super().__init__(A.in_shape, None)
        self.A, self.D, self.a, self.d = A, D, a, d

    def forward(self, x):
        return self.a * self.A(x), self.d * self.D(x)

    def adjoint(self, uv):
        u, v = uv
        return self.a * self.A.adjoint(u) + self.d * self.D.adjoint(v)
