"""mrct.jax.recon: TV-PDHG and CG-SENSE in JAX against the torch solvers; jit, vmap, grad."""

from __future__ import annotations

import numpy as np
import pytest
import torch

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import mrct.jax as mj  # noqa: E402
from mrct.physics import (  # noqa: E402
    NUFFT,
    CartesianMRI,
    Gradient,
    ParallelBeam,
    Radon,
    SenseNUFFT,
    birdcage_maps,
    radial_density,
    radial_trajectory,
)
from mrct.recon import cg_sense, tv_pdhg  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _x64():
    """float64 for this module only (restored afterwards)."""
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def _phantom(n=24):
    x = np.zeros((n, n))
    x[n // 4 : 3 * n // 4, n // 3 : 2 * n // 3] = 1.0
    x[n // 2 - 2 : n // 2 + 2, n // 2 - 2 : n // 2 + 2] = 2.0
    return x


@pytest.fixture(scope="module")
def ct():
    geo = ParallelBeam(np.linspace(0, np.pi, 16, endpoint=False), 33)
    T = Radon(geo, (24, 24))
    y = T(torch.from_numpy(_phantom()))
    return mj.radon(geo, (24, 24)), T, y


def test_gradient_matches_torch_and_is_adjoint():
    r = np.random.default_rng(0)
    x = r.standard_normal((2, 5, 7)) + 1j * r.standard_normal((2, 5, 7))
    g = r.standard_normal((2, 2, 5, 7))
    D = Gradient(spacing=(1.0, 0.5))
    dx = mj.recon.gradient(jnp.asarray(x), 2, (1.0, 0.5))
    assert _rel(dx, D(torch.from_numpy(x)).numpy()) < 1e-14
    dtg = mj.recon.gradient_adjoint(jnp.asarray(g), 2, (1.0, 0.5))
    assert _rel(dtg, D.adjoint(torch.from_numpy(g)).numpy()) < 1e-14
    v = r.standard_normal((4, 5, 6))
    Dv = mj.recon.gradient(jnp.asarray(v), 3)
    w = r.standard_normal(Dv.shape)
    assert abs(jnp.vdot(Dv, w) - jnp.vdot(v, mj.recon.gradient_adjoint(jnp.asarray(w), 3))) < 1e-10


def test_tv_pdhg_matches_torch(ct):
    A, T, y = ct
    xt, hist = tv_pdhg(T, y, 0.5, n_iter=60, adaptive=False, return_history=True)
    norms = dict(opnorm_A=hist.info["opnorm_A"], L=hist.info["L"])
    xj = mj.recon.tv_pdhg(A, jnp.asarray(y.numpy()), 0.5, 60, **norms)
    assert xj.shape == (24, 24) and xj.dtype == jnp.float64
    assert _rel(xj, xt.numpy()) < 1e-10
    # jitted, with its own (power-iteration) norm estimates: the same solution to 1e-3
    xo = jax.jit(lambda d: mj.recon.tv_pdhg(A, d, 0.5, 60))(jnp.asarray(y.numpy()))
    assert _rel(xo, xt.numpy()) < 1e-3
    xn = mj.recon.tv_pdhg(A, jnp.asarray(y.numpy()), 0.5, 60, nonneg=True, **norms)
    xtn = tv_pdhg(T, y, 0.5, n_iter=60, adaptive=False, nonneg=True, opnorm=norms["opnorm_A"])
    assert float(xn.min()) >= 0 and _rel(xn, xtn.numpy()) < 1e-3


def test_tv_pdhg_vmap_and_grad(ct):
    A, _, y = ct
    ys = jnp.stack([jnp.asarray(y.numpy()), 0.5 * jnp.asarray(y.numpy())])
    norms = dict(opnorm_A=19.0, L=1.03)

    def rec(d, lam):
        return mj.recon.tv_pdhg(A, d, lam, 15, **norms)

    batched = jax.jit(jax.vmap(rec, in_axes=(0, None)))(ys, 0.3)
    assert _rel(batched[1], rec(ys[1], 0.3)) < 1e-12
    # gradients of a loss on the reconstruction, through the loop and the projector
    target = jnp.asarray(_phantom())

    def loss(d, lam):
        return jnp.sum((rec(d, lam) - target) ** 2)

    gy, glam = jax.jit(jax.grad(loss, argnums=(0, 1)))(ys[0], 0.3)
    assert gy.shape == ys[0].shape and bool(jnp.isfinite(glam))
    assert bool(jnp.all(jnp.isfinite(gy)))
    # TV is not smooth everywhere: central differences with a small step
    check_grads(lambda lam: loss(ys[0], lam), (0.3,), order=1, modes=("rev",), eps=1e-6)
    check_grads(lambda d: loss(d, 0.3), (ys[0],), order=1, modes=("rev",), eps=1e-6)


def test_cg_sense_radial_matches_torch():
    traj = radial_trajectory(12, 32)
    maps = birdcage_maps((4, 16, 16), dtype=torch.complex128)
    T = SenseNUFFT(NUFFT(traj, (16, 16)), maps)
    A = mj.sense(maps.numpy(), mj.nufft(traj.numpy(), (16, 16)))
    assert A.out_shape == (4, 12, 32)
    x = torch.from_numpy(_phantom(16) + 0j)
    y = T(x)
    w = radial_density(traj)
    for weights in (None, w):
        xt = cg_sense(T, y, n_iter=10, weights=weights)
        xj = mj.recon.cg_sense(
            A, jnp.asarray(y.numpy()), 10, weights=None if weights is None else weights.numpy()
        )
        assert _rel(xj, xt.numpy()) < 1e-8
    xjit = jax.jit(lambda d: mj.recon.cg_sense(A, d, 10))(jnp.asarray(y.numpy()))
    assert _rel(xjit, cg_sense(T, y, n_iter=10).numpy()) < 1e-8
    # a batch of two k-spaces in one call; the tolerance freezes converged items
    ys = jnp.stack([jnp.asarray(y.numpy()), 2 * jnp.asarray(y.numpy())])
    xb = jax.vmap(lambda d: mj.recon.cg_sense(A, d, 10))(ys)
    assert _rel(xb[1], 2 * xjit) < 1e-8
    # SENSE-NUFFT itself: adjoint and jit(vmap(grad))
    xs = jnp.asarray(np.stack([_phantom(16), _phantom(16).T]) + 0j)
    g = jax.jit(jax.vmap(jax.grad(lambda v, d: 0.5 * jnp.sum(jnp.abs(A(v) - d) ** 2))))(xs, ys)
    assert _rel(g, jnp.conj(A.adjoint(A(xs) - ys))) < 1e-12
    assert _rel(A.normal(xs), A.adjoint(A(xs))) < 1e-4  # Toeplitz vs two NUFFTs


def test_cg_sense_cartesian_matches_torch():
    maps = birdcage_maps((3, 16, 16), dtype=torch.complex128)
    mask = np.zeros((1, 16))
    mask[0, ::2] = 1
    mask[0, 6:10] = 1
    T = CartesianMRI(torch.from_numpy(mask), maps)
    A = mj.sense(maps.numpy(), mask)
    y = T(torch.from_numpy(_phantom(16) + 0j))
    xt = cg_sense(T, y, n_iter=8, lam=1e-3)
    xj = jax.jit(lambda d: mj.recon.cg_sense(A, d, 8, lam=1e-3))(jnp.asarray(y.numpy()))
    assert _rel(xj, xt.numpy()) < 1e-8
