"""Reconstructions written in JAX end to end: TV-PDHG (sparse-view CT) and CG-SENSE (MRI).

Both are ``jax.lax.fori_loop`` iterations over an :mod:`mrct.jax` operator, so they run
under ``jax.jit`` (the operator's host kernels become callbacks inside the compiled loop),
``jax.vmap`` and ``jax.grad`` (reverse mode through a fixed number of iterations: the
gradient of a loss on the reconstruction with respect to the data, ``lam`` or a learned
component reuses the operator's exact adjoint at every step).

* :func:`tv_pdhg` is the Chambolle-Pock iteration of :func:`mrct.recon.tv_pdhg` with
  ``adaptive=False`` (same block scaling and step sizes, so with the same ``opnorm`` and
  ``L`` the iterates agree with the torch solver's).
* :func:`cg_sense` is :func:`mrct.recon.cg_sense` (conjugate gradients on
  ``(A^H W A + lam I) x = A^H W y``, items frozen once their residual is below ``tol``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["gradient", "gradient_adjoint", "total_variation", "opnorm", "tv_pdhg", "cg_sense"]


def _spacing(spacing, ndim):
    if isinstance(spacing, (int, float)):
        return (float(spacing),) * ndim
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != ndim:
        raise ValueError(f"spacing must be a float or {ndim} floats, got {spacing}")
    return spacing


def gradient(x, ndim: int = 2, spacing=1.0):
    """Forward differences ``(..., *spatial) -> (..., ndim, *spatial)`` (Neumann boundary),
    as :class:`mrct.physics.Gradient`."""
    parts = []
    for d, h in enumerate(_spacing(spacing, ndim)):
        ax = x.ndim - ndim + d
        diff = jnp.diff(x, axis=ax, append=jax.lax.slice_in_dim(x, -1, None, axis=ax))
        parts.append(diff / h if h != 1.0 else diff)
    return jnp.stack(parts, axis=x.ndim - ndim)


def gradient_adjoint(g, ndim: int = 2, spacing=1.0):
    """The exact adjoint of :func:`gradient` (the negative divergence)."""
    comp = g.ndim - ndim - 1
    out = 0
    for d, h in enumerate(_spacing(spacing, ndim)):
        gd = jnp.take(g, d, axis=comp)
        ax = gd.ndim - ndim + d
        inner = jax.lax.slice_in_dim(gd, 0, gd.shape[ax] - 1, axis=ax)
        zero = jnp.zeros_like(jax.lax.slice_in_dim(gd, 0, 1, axis=ax))
        term = jnp.concatenate([zero, inner], ax) - jnp.concatenate([inner, zero], ax)
        out = out + (term / h if h != 1.0 else term)
    return out


def _grad_norm(g, comp_axis):
    """Pointwise ``|g_i|_2`` over the components (and real/imaginary parts); its derivative
    is 0 rather than NaN where ``g_i = 0``."""
    s = jnp.sum(g.real**2 + g.imag**2 if jnp.iscomplexobj(g) else g * g, axis=comp_axis)
    pos = s > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, s, 1)), 0)


def total_variation(x, ndim: int = 2, spacing=1.0):
    """Isotropic TV ``sum_i |(D x)_i|_2`` over the last ``ndim`` axes (real or complex)."""
    mag = _grad_norm(gradient(x, ndim, spacing), x.ndim - ndim)
    return jnp.sum(mag, axis=tuple(range(-ndim, 0)))


def _sq(v, n):
    """Per-item squared norms over the last ``n`` axes."""
    a = jnp.abs(v) ** 2 if jnp.iscomplexobj(v) else v * v
    return jnp.sum(a, axis=tuple(range(-n, 0)))


def opnorm(forward, adjoint, x_shape, dtype=jnp.float32, n_iter: int = 50, seed: int = 0):
    """Spectral norm of a linear map by ``n_iter`` power iterations on ``adjoint(forward(.))``
    (a ``lax.fori_loop``; jittable). ``forward``/``adjoint`` are functions of one array."""
    key = jax.random.PRNGKey(seed)
    x = jax.random.normal(key, tuple(x_shape), dtype=jnp.dtype(dtype))
    x = x / jnp.linalg.norm(x.ravel())

    def body(_, carry):
        x, _s = carry
        z = adjoint(forward(x))
        s = jnp.linalg.norm(z.ravel())
        return jnp.where(s > 0, z / jnp.where(s > 0, s, 1), z), s

    _, s2 = jax.lax.fori_loop(0, n_iter, body, (x, jnp.zeros((), x.real.dtype)))
    return jnp.sqrt(s2)


def tv_pdhg(op, y, lam, n_iter: int = 300, *, x0=None, nonneg: bool = False,
            ndim: int | None = None, spacing=1.0, ratio: float = 1.0, opnorm_A=None, L=None,
            norm_iter: int = 50):  # fmt: skip
    """TV-regularised least squares ``min_x 1/2 ||A x - y||^2 + lam TV(x)`` by Chambolle-Pock.

    Parameters
    ----------
    op : an :mod:`mrct.jax` operator (``radon``, ``cartesian``, ``sense``, ``nufft``, ...)
    y : array (*batch, *op.out_shape), real or complex
    lam : TV weight (may be traced: differentiate the reconstruction with respect to it)
    n_iter : number of iterations (static)
    x0 : starting image (default zeros)
    nonneg : clamp ``x >= 0`` (real images)
    ndim : TV dimensions (default ``len(op.in_shape)``); spacing: finite-difference spacing
    ratio : ``sigma / tau`` (``tau sigma L^2 = 0.99``)
    opnorm_A, L : ``||A||`` and the bound ``L`` on ``||[a A; d D]||`` if known (e.g. the
        ``info`` of :func:`mrct.recon.tv_pdhg`'s history); otherwise estimated by
        ``norm_iter`` power iterations (without gradient).

    Returns
    -------
    x : array (*batch, *op.in_shape)

    Notes
    -----
    Same iteration, block scaling (``a = 1/||A||``, ``d = 1/||D||``) and step sizes as
    :func:`mrct.recon.tv_pdhg` with ``adaptive=False``; one ``A``, one ``A^H``, one gradient
    and one divergence per iteration, all in one compiled loop under ``jax.jit``.
    """
    y = jnp.asarray(y)
    in_shape = tuple(op.in_shape)
    n_x = len(in_shape)
    ndim = (n_x if n_x in (2, 3) else 2) if ndim is None else int(ndim)
    sp = _spacing(spacing, ndim)
    x_aval = jax.eval_shape(op.adjoint, y)
    x = jnp.zeros(x_aval.shape, x_aval.dtype) if x0 is None else jnp.asarray(x0, x_aval.dtype)
    rdt = x.real.dtype

    def D(v):
        return gradient(v, ndim, sp)

    def Dt(g):
        return gradient_adjoint(g, ndim, sp)

    d = 1.0 / math.sqrt(sum(4.0 / h**2 for h in sp))
    if opnorm_A is None:
        opnorm_A = opnorm(op, op.adjoint, in_shape, x.dtype, norm_iter)
    a = 1.0 / jax.lax.stop_gradient(jnp.asarray(opnorm_A, rdt))
    if L is None:

        def kfwd(v):
            return a * op(v), d * D(v)

        def kadj(uv):
            return a * op.adjoint(uv[0]) + d * Dt(uv[1])

        L = 1.01 * opnorm(kfwd, kadj, in_shape, x.dtype, norm_iter, seed=1)
    L = jax.lax.stop_gradient(jnp.asarray(L, rdt))
    tau = math.sqrt(0.99 / ratio) / L
    sigma = ratio * tau
    radius = jnp.asarray(lam, rdt) / d
    comp = -ndim - 1
    tiny = jnp.finfo(rdt).tiny

    def proj_ball(q):
        mag = jnp.expand_dims(_grad_norm(q, q.ndim + comp), comp)
        return q * jnp.where(mag > radius, radius / jnp.maximum(mag, tiny), 1.0)

    if nonneg:
        x = jnp.maximum(x, 0)
    Axb, Dxb = op(x), D(x)
    p, q = jnp.zeros_like(Axb), jnp.zeros_like(Dxb)

    def body(_, carry):
        x, p, q, Axb, Dxb = carry
        p_new = (p + (sigma * a) * (Axb - y)) / (1.0 + sigma * a * a)
        q_new = proj_ball(q + (sigma * d) * Dxb)
        x_new = x - tau * (a * op.adjoint(p_new) + d * Dt(q_new))
        if nonneg:
            x_new = jnp.maximum(x_new, 0)
        xb = 2.0 * x_new - x
        return x_new, p_new, q_new, op(xb), D(xb)

    x, *_ = jax.lax.fori_loop(0, int(n_iter), body, (x, p, q, Axb, Dxb))
    return x


def _safe_div(a, b):
    nz = b != 0
    return jnp.where(nz, a / jnp.where(nz, b, 1), 0)


def cg_sense(op, y, n_iter: int = 50, tol: float = 1e-6, *, lam=0.0, weights=None, x0=None,
             normal=None):  # fmt: skip
    """CG-SENSE: conjugate gradients for ``min_x 1/2 ||A x - y||_W^2 + lam/2 ||x||^2``.

    Parameters
    ----------
    op : encoding operator (``mrct.jax.sense(maps, mask_or_nufft)``, ``nufft``, ...)
    y : array (*batch, *op.out_shape)
    n_iter : iterations (static); items whose relative normal-equation residual falls to
        ``tol`` stop changing, as in :func:`mrct.recon.cg_sense`
    lam : Tikhonov weight; weights: real density compensation ``W`` (static numpy array)
    normal : ``A^H W A`` (a function); default ``op.normal(x, weights)`` for NUFFT-based
        operators (Toeplitz), ``op.normal(x)`` without weights, else ``A^H(W A x)``

    Returns
    -------
    x : array (*batch, *op.in_shape)
    """
    y = jnp.asarray(y)
    n = len(op.in_shape)
    w = None if weights is None else jnp.asarray(weights)
    wy = y if w is None else w.astype(y.real.dtype) * y
    b = op.adjoint(wy)
    if normal is None:
        import inspect

        takes_w = "weights" in inspect.signature(op.normal).parameters
        if w is None:
            normal = op.normal
        elif takes_w:

            def normal(v):
                return op.normal(v, weights)

        else:

            def normal(v):
                return op.adjoint(w.astype(y.real.dtype) * op(v))

    def M(v):
        return normal(v) + lam * v

    def dot(u, v):
        return jnp.real(jnp.sum(jnp.conj(u) * v, axis=tuple(range(-n, 0))))

    def bx(s):
        return s.reshape(s.shape + (1,) * n)

    x = jnp.zeros_like(b) if x0 is None else jnp.asarray(x0, b.dtype)
    r = b if x0 is None else b - M(x)
    tiny = jnp.finfo(b.real.dtype).tiny
    b_norm = jnp.maximum(jnp.sqrt(_sq(b, n)), tiny)
    rs = _sq(r, n)
    active = jnp.sqrt(rs) / b_norm > tol

    def body(_, carry):
        x, r, p, rs, active = carry
        Mp = M(p)
        alpha = _safe_div(rs, dot(p, Mp)) * active
        x = x + bx(alpha).astype(x.dtype) * p
        r = r - bx(alpha).astype(r.dtype) * Mp
        rs_new = _sq(r, n)
        p = r + bx(_safe_div(rs_new, rs)).astype(p.dtype) * p
        active = active & (jnp.sqrt(rs_new) / b_norm > tol)
        return x, r, p, rs_new, active

    x, *_ = jax.lax.fori_loop(0, int(n_iter), body, (x, r, r, rs, active))
    return x
