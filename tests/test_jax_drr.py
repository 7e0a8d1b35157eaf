"""mrct.jax.drr: fixed-pose DRRs (host kernels) and the pose-differentiable jnp renderer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import mrct.jax as mj  # noqa: E402
from mrct.physics import DRR, view_pose  # noqa: E402
from mrct.physics.pose import euler_to_matrix  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _x64():
    """float64 for this module only (restored afterwards)."""
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


SPACING = (1.5, 1.2, 1.0)
DET = dict(height=16, width=12, pixel_spacing=2.0, sdd=200.0)


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def _volume(seed=0):
    v = np.zeros((12, 14, 10))
    v[3:9, 4:11, 2:8] = 0.02
    return v + 0.002 * np.random.default_rng(seed).random(v.shape)


def _torch_drr(renderer):
    return DRR(torch.from_numpy(_volume()), SPACING, attenuation="none", dtype=torch.float64,
               renderer=renderer, sid=120.0, **DET)  # fmt: skip


def _pose():
    ap = view_pose("ap", 120.0)
    R = euler_to_matrix(torch.tensor([0.02, -0.03, 0.05], dtype=torch.float64)) @ ap.R
    return R, ap.t + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
def test_fixed_pose_matches_torch_and_adjoint(renderer):
    views = ["ap", "lateral"]
    R = mj.drr(SPACING, DET, volume_shape=(12, 14, 10), view=views, renderer=renderer, sid=120.0)
    assert R.out_shape == (2, 16, 12) and R.in_shape == (12, 14, 10)
    want = _torch_drr(renderer)(view=views).numpy()
    vol = jnp.asarray(_volume())
    assert _rel(R(vol), want) < 1e-6
    assert _rel(jax.jit(R)(vol), want) < 1e-6
    assert R(vol.astype(jnp.float32)).dtype == jnp.float32
    y = jnp.asarray(np.random.default_rng(1).standard_normal(R.out_shape))
    lhs, rhs = jnp.vdot(R(vol), y), jnp.vdot(vol, R.adjoint(y))
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)
    check_grads(R, (vol,), order=1, modes=("fwd", "rev"))
    vols = jnp.stack([vol, 2 * vol])
    g = jax.jit(jax.vmap(jax.grad(lambda v: 0.5 * jnp.sum(R(v) ** 2))))(vols)
    assert _rel(g, R.adjoint(R(vols))) < 1e-12


def test_render_matches_torch_with_pose_gradients():
    Rm, t = _pose()
    rot, tr = Rm.clone().requires_grad_(True), t.clone().requires_grad_(True)
    T = _torch_drr("trilinear")
    img = T(rot, tr, parameterization="matrix")
    img.square().sum().backward()
    D = mj.drr(SPACING, DET, volume_shape=(12, 14, 10), renderer="trilinear", sid=120.0)
    vol = jnp.asarray(_volume())
    rj, tj = jnp.asarray(Rm.numpy()), jnp.asarray(t.numpy())
    out = D.render(vol, rj, tj)
    assert out.shape == (16, 12)
    assert _rel(out, img.detach().numpy()) < 1e-10
    g_r, g_t = jax.grad(lambda r, s: jnp.sum(D.render(vol, r, s) ** 2), (0, 1))(rj, tj)
    assert _rel(g_r, rot.grad.numpy()) < 1e-8 and _rel(g_t, tr.grad.numpy()) < 1e-8
    # the trilinear kernel at the same pose gives the same image
    K = mj.drr(SPACING, DET, volume_shape=(12, 14, 10), renderer="trilinear", sid=120.0,
               rotation=Rm.numpy(), translation=t.numpy(), parameterization="matrix")  # fmt: skip
    assert _rel(K(vol)[0], out) < 1e-10


def test_render_euler_grads_and_vmap_over_poses():
    D = mj.drr(SPACING, DET, volume_shape=(12, 14, 10), renderer="trilinear", sid=120.0)
    vol = jnp.asarray(_volume())
    ap = view_pose("ap", 120.0)
    R_ap = jnp.asarray(ap.R.numpy())
    t0 = jnp.asarray(ap.t.numpy())

    def image(angles, shift):
        return D.render(vol, mj.euler_to_matrix(angles) @ R_ap, t0 + shift)

    target = image(jnp.zeros(3), jnp.zeros(3))

    def loss(angles, shift):
        return jnp.sum((image(angles, shift) - target) ** 2)

    a0, s0 = jnp.asarray([0.01, -0.02, 0.03]), jnp.asarray([0.5, -1.0, 0.3])
    check_grads(loss, (a0, s0), order=1, modes=("rev", "fwd"), eps=1e-6)
    angles = jnp.stack([a0, 2 * a0, -a0])
    shifts = jnp.stack([s0, -s0, 0 * s0])
    gs = jax.jit(jax.vmap(jax.grad(loss, (0, 1))))(angles, shifts)
    g1 = jax.grad(loss, (0, 1))(angles[1], shifts[1])
    assert _rel(gs[0][1], g1[0]) < 1e-10 and _rel(gs[1][1], g1[1]) < 1e-10
    # matrices equal torch's Euler convention
    ang = np.array([0.3, -0.2, 0.7])
    want = euler_to_matrix(torch.from_numpy(ang), "ZXY").numpy()
    assert _rel(mj.euler_to_matrix(ang), want) < 1e-14


def test_drr_arguments():
    D = mj.drr(1.0, 8, volume_shape=(4, 5, 6))
    assert D.out_shape == (1, 8, 8)
    with pytest.raises(ValueError, match="detector keys"):
        mj.drr(1.0, {"rows": 8}, volume_shape=(4, 5, 6))
    with pytest.raises(ValueError, match="shape"):
        D(jnp.zeros((4, 5, 5)))
