"""mrct.jax.radon: agreement with the torch operator, exact adjoints, jit/grad/vmap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import mrct.jax as mj  # noqa: E402
from mrct.physics import ConeBeam, FanBeam, ParallelBeam, Radon  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _x64():
    """float64 for this module only (restored afterwards)."""
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


GEOMETRIES = {
    "parallel": (lambda: ParallelBeam(np.linspace(0, np.pi, 12, endpoint=False), 23), (16, 18)),
    "fan-flat": (lambda: FanBeam(np.linspace(0, 6.0, 8), 25, 1.3, 30.0, 20.0), (12, 14)),
    "fan-arc": (
        lambda: FanBeam(np.linspace(0, 6.0, 8), 25, 1.3, 30.0, 20.0, detector="arc"),
        (12, 14),
    ),
    "cone": (
        lambda: ConeBeam(np.linspace(0, 6.0, 5), (9, 11), (1.1, 1.2), 40.0, 25.0),
        (6, 8, 9),
    ),
}
FBP_GEOMETRIES = {
    "parallel": (lambda: ParallelBeam(np.linspace(0, np.pi, 24, endpoint=False), 31), (20, 20)),
    "fan-full": (lambda: FanBeam.full_scan(36, 41, 1.0, 60.0, 40.0), (20, 20)),
    "fan-short-arc": (lambda: FanBeam.short_scan(40, 41, 1.0, 60.0, 40.0, "arc"), (20, 20)),
    "cone-fdk": (lambda: ConeBeam.full_scan(24, (8, 21), (1.0, 1.0), 60.0, 40.0), (4, 12, 12)),
}


def _rng(seed=0):
    return np.random.default_rng(seed)


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


@pytest.fixture(params=list(GEOMETRIES))
def case(request):
    make, shape = GEOMETRIES[request.param]
    geo = make()
    ps = (1.0, 0.9) if isinstance(geo, ConeBeam) else 0.9
    return geo, shape, ps


def test_matches_torch_float64(case):
    geo, shape, ps = case
    A, T = mj.radon(geo, shape, ps), Radon(geo, shape, ps)
    x = _rng().standard_normal((2,) + shape)
    y = _rng(1).standard_normal((2,) + geo.proj_shape)
    ax = A(jnp.asarray(x))
    assert ax.dtype == jnp.float64 and ax.shape == (2,) + geo.proj_shape
    assert _rel(ax, T(torch.from_numpy(x)).numpy()) < 1e-6
    assert _rel(A.adjoint(jnp.asarray(y)), T.adjoint(torch.from_numpy(y)).numpy()) < 1e-6
    assert _rel(jax.jit(A)(x), ax) < 1e-12
    assert _rel(jax.jit(A.T)(y), A.adjoint(y)) < 1e-12


def test_dtypes_and_complex(case):
    geo, shape, ps = case
    A = mj.radon(geo, shape, ps)
    x = _rng().standard_normal(shape)
    y32 = A(jnp.asarray(x, jnp.float32))
    assert y32.dtype == jnp.float32
    assert _rel(y32, A(jnp.asarray(x))) < 1e-5
    z = jnp.asarray(x + 1j * _rng(2).standard_normal(shape))
    yz = A(z)
    assert yz.dtype == jnp.complex128
    assert _rel(yz, A(z.real) + 1j * A(z.imag)) < 1e-14
    assert A.adjoint(yz.astype(jnp.complex64)).dtype == jnp.complex64
    with pytest.raises(TypeError, match="float32 or float64"):
        A(jnp.zeros(shape, jnp.int32))
    with pytest.raises(ValueError, match="shape"):
        A(jnp.zeros((3, 3)))


def test_dot_product_adjoint(case):
    geo, shape, ps = case
    A = mj.radon(geo, shape, ps)
    x = jnp.asarray(_rng().standard_normal(shape))
    y = jnp.asarray(_rng(1).standard_normal(geo.proj_shape))
    lhs, rhs = jnp.vdot(A(x), y), jnp.vdot(x, A.adjoint(y))
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


def test_check_grads(case):
    geo, shape, ps = case
    A = mj.radon(geo, shape, ps)
    x = jnp.asarray(_rng().standard_normal(shape))
    y = jnp.asarray(_rng(1).standard_normal(geo.proj_shape))
    check_grads(A, (x,), order=2, modes=("fwd", "rev"))
    check_grads(A.adjoint, (y,), order=1, modes=("fwd", "rev"))
    check_grads(lambda v: jnp.sum(jnp.sin(A(v))), (x,), order=2, modes=("rev",))


def test_jit_vmap_grad_one_kernel_call(case):
    geo, shape, ps = case
    A = mj.radon(geo, shape, ps)
    calls = []
    fwd, adj = A._lin.fwd_fn, A._lin.adj_fn
    A._lin.fwd_fn = lambda t: calls.append(("A", tuple(t.shape))) or fwd(t)
    A._lin.adj_fn = lambda t: calls.append(("At", tuple(t.shape))) or adj(t)
    xs = jnp.asarray(_rng().standard_normal((3,) + shape))
    ys = jnp.asarray(_rng(1).standard_normal((3,) + geo.proj_shape))

    def loss(x, y):
        return 0.5 * jnp.sum((A(x) - y) ** 2)

    g = jax.jit(jax.vmap(jax.grad(loss)))(xs, ys)
    # the batched gradient is A^T (A x - y), from one forward and one adjoint kernel call
    assert sorted(calls) == [("A", (3,) + shape), ("At", (3,) + geo.proj_shape)]
    want = np.stack([np.asarray(A.adjoint(A(xs[i]) - ys[i])) for i in range(3)])
    assert _rel(g, want) < 1e-12
    # a batch axis that is not the first one
    gt = jax.vmap(jax.grad(loss), in_axes=(1, 1))(jnp.moveaxis(xs, 0, 1), jnp.moveaxis(ys, 0, 1))
    assert _rel(gt, want) < 1e-12


def test_jvp_is_the_operator(case):
    geo, shape, ps = case
    A = mj.radon(geo, shape, ps)
    x = jnp.asarray(_rng().standard_normal(shape))
    t = jnp.asarray(_rng(3).standard_normal(shape))
    primal, tangent = jax.jvp(A, (x,), (t,))
    assert _rel(tangent, A(t)) < 1e-14
    _, vjp = jax.vjp(A, x)
    assert _rel(vjp(primal)[0], A.adjoint(primal)) < 1e-14


@pytest.mark.parametrize("name", list(FBP_GEOMETRIES))
def test_fbp_matches_torch(name):
    make, shape = FBP_GEOMETRIES[name]
    geo = make()
    A, T = mj.radon(geo, shape), Radon(geo, shape)
    x = _rng().standard_normal((2,) + shape)
    y = np.array(A(jnp.asarray(x)))
    want = T.fbp(torch.from_numpy(y), "hann").numpy()
    got = A.fbp(jnp.asarray(y), "hann")
    assert got.shape == (2,) + shape and got.dtype == jnp.float64
    assert _rel(got, want) < 1e-6
    assert _rel(jax.jit(lambda v: A.fbp(v, "hann"))(y), want) < 1e-6
    assert _rel(jax.vmap(lambda v: A.fbp(v, "hann"))(y), want) < 1e-6
    if name != "cone-fdk":  # FBP is linear with an exact-transpose backward; FDK has none
        check_grads(lambda v: A.fbp(v, "hann"), (jnp.asarray(y[0]),), order=1, modes=("fwd", "rev"))
        g = jax.jit(jax.vmap(jax.grad(lambda v: jnp.sum(A.fbp(v) ** 2))))(y)
        assert g.shape == y.shape


def test_fdk_has_no_gradient():
    make, shape = FBP_GEOMETRIES["cone-fdk"]
    A = mj.radon(make(), shape)
    y = jnp.ones(A.out_shape)
    with pytest.raises(Exception, match="(?i)jvp|differentiat"):
        jax.grad(lambda v: jnp.sum(A.fbp(v)))(y)


def test_adjoint_operator_object():
    geo = ParallelBeam(np.linspace(0, np.pi, 6, endpoint=False), 11)
    A = mj.radon(geo, (8, 8))
    assert A.T.T is A and A.T.in_shape == geo.proj_shape and A.H.out_shape == (8, 8)
    x = jnp.asarray(_rng().standard_normal((8, 8)))
    assert _rel(A.T.adjoint(x), A(x)) == 0
    assert _rel(A.normal(x), A.adjoint(A(x))) == 0
    with pytest.raises(TypeError, match="geometry"):
        mj.radon("parallel", (8, 8))
