"""mrct.jax MRI operators (NUFFT, Cartesian, SENSE, radial <-> sinogram) against torch."""

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
    birdcage_maps,
    radial_angles,
    radial_density,
    radial_to_sinogram,
    radial_trajectory,
    sinogram_to_radial,
)


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


def _cplx(shape, seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal(shape) + 1j * r.standard_normal(shape)


def _traj(n_spokes=9, n_samples=20):
    return radial_trajectory(n_spokes, n_samples).numpy()


# -- NUFFT ---------------------------------------------------------------------------------------
def test_nufft_matches_torch_float64():
    traj = _traj()
    F, T = mj.nufft(traj, (16, 14), eps=1e-8), NUFFT(torch.from_numpy(traj), (16, 14), 1e-8)
    x, y = _cplx((2, 16, 14)), _cplx((2, 9, 20), 1)
    fx = F(jnp.asarray(x))
    assert fx.dtype == jnp.complex128 and fx.shape == (2, 9, 20)
    assert _rel(fx, T(torch.from_numpy(x)).numpy()) < 1e-6
    assert _rel(F.adjoint(y), T.adjoint(torch.from_numpy(y)).numpy()) < 1e-6
    assert _rel(jax.jit(F)(x), fx) < 1e-12
    w = radial_density(torch.from_numpy(traj)).numpy()
    assert _rel(F.adjoint(y, w), T.adjoint(torch.from_numpy(y * w)).numpy()) < 1e-6
    want = T.normal(w)(torch.from_numpy(x)).numpy()
    assert _rel(F.normal(x, w), want) < 1e-6
    assert _rel(jax.jit(F.normal)(x), T.normal()(torch.from_numpy(x)).numpy()) < 1e-6


def test_eager_results_own_their_memory():
    """Eager calls hand the kernel's output to JAX without a copy (DLPack): later calls must
    not change earlier results (no output buffer is reused), and the two stay independent."""
    traj = _traj()
    F = mj.nufft(traj, (16, 14), eps=1e-8)
    x1, x2 = _cplx((16, 14)), _cplx((16, 14), 2)
    y1 = F(jnp.asarray(x1))
    keep = np.array(y1)
    y2 = F(jnp.asarray(x2))
    a1 = F.adjoint(y1)
    keep_a = np.array(a1)
    F.adjoint(y2)
    np.testing.assert_array_equal(np.asarray(y1), keep)
    np.testing.assert_array_equal(np.asarray(a1), keep_a)
    assert _rel(y2, keep) > 0.1


def test_nufft_dtypes_and_adjoint():
    F = mj.nufft(_traj(), (16, 14))
    x, y = _cplx((16, 14)), _cplx((9, 20), 1)
    assert F(jnp.asarray(x, jnp.complex64)).dtype == jnp.complex64
    assert F(jnp.asarray(x.real)).dtype == jnp.complex128  # real input is promoted
    assert F(jnp.asarray(x.real, jnp.float32)).dtype == jnp.complex64
    assert F.adjoint(jnp.asarray(y, jnp.complex64)).dtype == jnp.complex64
    lhs, rhs = jnp.vdot(F(x), y), jnp.vdot(x, F.adjoint(y))  # <Fx, y> = <x, F^H y>
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)
    with pytest.raises(ValueError, match="shape"):
        F(jnp.zeros((3, 3), jnp.complex64))


def test_nufft_grads_and_jvp():
    F = mj.nufft(_traj(5, 12), (8, 8))
    x, y = jnp.asarray(_cplx((8, 8))), jnp.asarray(_cplx((5, 12), 1))
    check_grads(F, (x,), order=2, modes=("fwd", "rev"))
    check_grads(F.adjoint, (y,), order=1, modes=("fwd", "rev"))
    check_grads(lambda v: jnp.sum(jnp.abs(F(v)) ** 2), (x,), order=1, modes=("rev",))
    t0 = jnp.asarray(_cplx((8, 8), 2))
    _, t = jax.jvp(F, (x,), (t0,))
    assert _rel(t, F(t0)) < 1e-14
    # real loss: JAX's gradient is the conjugate of torch's, conj(2 F^H (F x - y))
    g = jax.grad(lambda v: jnp.sum(jnp.abs(F(v) - y) ** 2))(x)
    assert _rel(g, jnp.conj(2 * F.adjoint(F(x) - y))) < 1e-12


def test_nufft_jit_vmap_grad_one_kernel_call():
    F = mj.nufft(_traj(), (16, 14))
    calls = []
    fwd, adj = F._lin.fwd_fn, F._lin.adj_fn
    F._lin.fwd_fn = lambda t: calls.append(("F", tuple(t.shape))) or fwd(t)
    F._lin.adj_fn = lambda t: calls.append(("Fh", tuple(t.shape))) or adj(t)
    xs, ys = jnp.asarray(_cplx((4, 16, 14))), jnp.asarray(_cplx((4, 9, 20), 1))

    def loss(x, y):
        return 0.5 * jnp.sum(jnp.abs(F(x) - y) ** 2)

    g = jax.jit(jax.vmap(jax.grad(loss)))(xs, ys)
    assert sorted(calls) == [("F", (4, 16, 14)), ("Fh", (4, 9, 20))]
    want = jnp.conj(F.adjoint(F(xs) - ys))
    assert _rel(g, want) < 1e-12
    # coils as a second vmapped axis
    gc = jax.vmap(jax.vmap(F), in_axes=1, out_axes=1)(xs.reshape(2, 2, 16, 14))
    assert _rel(gc, F(xs).reshape(2, 2, 9, 20)) < 1e-12


# -- Cartesian and SENSE ---------------------------------------------------------------------------
def _mask(H=12, W=10, seed=0):
    m = (np.random.default_rng(seed).random(W) < 0.5).astype(np.float64)
    m[W // 2 - 1 : W // 2 + 2] = 1
    return m[None, :]


@pytest.mark.parametrize("kind", ["single", "sense", "2d-mask"])
def test_cartesian_matches_torch(kind):
    H, W = 12, 10
    mask = _mask(H, W)
    maps = None
    if kind == "2d-mask":
        mask = (np.random.default_rng(1).random((H, W)) < 0.6).astype(np.float64)
    if kind == "sense":
        maps = birdcage_maps((4, H, W), dtype=torch.complex128).numpy()
        A = mj.sense(maps, mask)
    else:
        A = mj.cartesian(mask)
    T = CartesianMRI(torch.from_numpy(mask), None if maps is None else torch.from_numpy(maps))
    x = _cplx((3, H, W))
    ax = A(jnp.asarray(x))
    tx = T(torch.from_numpy(x)).numpy()
    assert ax.shape == tx.shape and ax.dtype == jnp.complex128
    assert _rel(ax, tx) < 1e-6
    y = _cplx(tx.shape, 2)
    assert _rel(A.adjoint(y), T.adjoint(torch.from_numpy(y)).numpy()) < 1e-6
    assert _rel(A.normal(x), T.normal()(torch.from_numpy(x)).numpy()) < 1e-6
    lhs, rhs = jnp.vdot(A(x), y), jnp.vdot(x, A.adjoint(y))
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)
    assert A(jnp.asarray(x, jnp.complex64)).dtype == jnp.complex64
    assert A(jnp.asarray(x.real, jnp.float32)).dtype == jnp.complex64
    check_grads(A, (jnp.asarray(x[0]),), order=2, modes=("fwd", "rev"))
    check_grads(A.adjoint, (jnp.asarray(y[0]),), order=1, modes=("fwd", "rev"))

    def loss(v, d):
        return 0.5 * jnp.sum(jnp.abs(A(v) - d) ** 2)

    g = jax.jit(jax.vmap(jax.grad(loss)))(jnp.asarray(x), jnp.asarray(y))
    assert _rel(g, jnp.conj(A.adjoint(A(x) - y))) < 1e-12


def test_cartesian_shapes():
    A = mj.cartesian(np.ones(10))
    assert A.image_shape is None and A(jnp.ones((4, 10))).shape == (4, 10)
    S = mj.sense(np.ones((3, 6, 5), np.complex64), np.ones((6, 5)))
    assert S.in_shape == (6, 5) and S.out_shape == (3, 6, 5)
    with pytest.raises(TypeError, match="real"):
        mj.cartesian(np.ones(4, np.complex64))


# -- radial k-space <-> sinogram -------------------------------------------------------------------
def test_radial_sinogram_matches_torch():
    ang = radial_angles(7)
    k = _cplx((2, 7, 16))
    sino, geo = mj.radial_to_sinogram(jnp.asarray(k), ang, (16, 16), 0.8)
    ts, tgeo = radial_to_sinogram(torch.from_numpy(k), ang, (16, 16), 0.8)
    assert _rel(sino, ts.numpy()) < 1e-12 and geo.proj_shape == tgeo.proj_shape
    back = mj.sinogram_to_radial(sino, ang, (16, 16), 0.8)
    assert _rel(back, sinogram_to_radial(ts, ang, (16, 16), 0.8).numpy()) < 1e-12
    assert _rel(back, k) < 1e-12
